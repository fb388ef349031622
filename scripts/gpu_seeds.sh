#!/usr/bin/env bash
# Run-to-run spread of a Sprites config: train it at several seeds side by side on one GPU (small
# configs leave most of a GPU idle), evaluate each on the same test clips, print one table.
# Each run's log and figures land in OUT as they come (seed_<S>.log, seed_<S>.json: its eval.json),
# the table in OUT/seeds.md. Plan a lease for data (about 1 min), the training, and about 2 min of
# evaluation per run: a 285 s command with MAX_MIN=2.2 on an H200 returned no run.
#
# usage: scripts/gpu_seeds.sh CONFIG SHEETS JUDGE OUT SEED [SEED ...]
#   e.g. scripts/gpu_seeds.sh sprites-cpu-set PATH/TO/lpc_sprites judge.safetensors out 1 2 3
# A dry run on a CPU: STEPS=3 CLIPS=16 (and a small config). MAX_MIN=M stops each training at a
# wall-clock budget (the table's steps column then says how far each got).
set -uo pipefail
config=$1 sheets=$2 judge=$3 out=$4
shift 4
work=${WORK:-/tmp/motionbits-seeds}
mkdir -p "$out" "$work"
mb=(python3 -m motionbits.cli)
quiet() { tr '\r' '\n' | grep -v -E '[0-9]+%\|' ; }  # drop progress-bar redraws from logs

src=$(python3 -c "from motionbits.config import resolve_config_path as r; import sys; print(r(sys.argv[1]))" "$config") || exit
[ -f "$work/sprites/manifest.json" ] || "${mb[@]}" data sprites --sheets "$sheets" --out "$work/sprites" 2>&1 | quiet > "$out/data.log" || exit
one_seed() {
  local seed=$1 run=$work/seed_$1
  mkdir -p "$run"
  python3 - "$src" "$run.yaml" "$seed" <<'EOF'
import sys, yaml
src, path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
cfg = yaml.safe_load(open(src))
cfg["name"] = f"seed_{seed}"
cfg.setdefault("train", {})["seed"] = seed
yaml.safe_dump(cfg, open(path, "w"), sort_keys=False)
EOF
  "${mb[@]}" train --config "$run.yaml" --data "$work/sprites" --out "$run" ${STEPS:+--steps $STEPS} ${MAX_MIN:+--max-minutes $MAX_MIN} 2>&1 | quiet > "$out/seed_$seed.log" || return
  "${mb[@]}" evaluate --checkpoint "$run" --judge "$judge" --clips "${CLIPS:-500}" 2>&1 | quiet >> "$out/seed_$seed.log" || return
  python3 - "$run" "$out/seed_$seed.json" <<'EOF'
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
report = json.loads((run / "eval.json").read_text())
report["trained_steps"] = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["step"]
Path(sys.argv[2]).write_text(json.dumps(report, indent=2))
EOF
}
for seed in "$@"; do one_seed "$seed" & done
wait
python3 - "$out" "$config" <<'EOF'
import json, sys
from pathlib import Path
out, config = Path(sys.argv[1]), sys.argv[2]
lines = [f"# {config} at several seeds", "", "| seed | steps | motion | attributes | body | bottomwear | topwear | hair | PSNR (dB) | bits/frame | probe: action |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
for path in sorted(out.glob("seed_*.json")):
    r = json.loads(path.read_text())
    s = r["swap"]
    lines.append(f"| {path.stem[5:]} | {r['trained_steps']} | {100 * s['motion']:.1f} % | {100 * s['attributes_mean']:.1f} % | {100 * s['body']:.1f} | "
                 f"{100 * s['bottomwear']:.1f} | {100 * s['topwear']:.1f} | {100 * s['hair']:.1f} | "
                 f"{r['reconstruction']['psnr_db']:.2f} | {r['rate']['bits_per_frame']:.2f} | "
                 f"{100 * r.get('content_probe', {}).get('action', float('nan')):.1f} % |")
(out / "seeds.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
