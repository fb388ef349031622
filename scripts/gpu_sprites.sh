#!/usr/bin/env bash
# The Sprites benchmark on one GPU in a fixed time budget, end to end:
#   1. `motionbits bench` of the sprites config (eager and torch.compile) and of talking-head-256
#      (sampling timed to RGB frames when the taef2 folder is given);
#   2. `motionbits demo --config CONFIG` trained for the number of steps that fits TRAIN_SECONDS at
#      the step time measured in 1: data, training, transfer GIF, evaluation on the whole test split;
#   3. the few-step study: the same evaluation at several step counts on a fixed test subset.
# Everything that is worth keeping lands in OUT_DIR (at most 8 files).
#
# usage: scripts/gpu_sprites.sh SHEETS_DIR OUT_DIR [TRAIN_SECONDS] [TAEF2_DIR] [CONFIG]
set -uo pipefail
sheets=$1
out=$2
train_s=${3:-180}
taef2=${4:-}
config=${5:-sprites}
work=${WORK:-/tmp/motionbits-gpu}
mkdir -p "$out" "$work"
mb=(python3 -m motionbits.cli)
quiet() { tr '\r' '\n' | grep -v -E '[0-9]+%\|' ; }  # drop progress-bar redraws from logs
stamp() { echo "[$(date +%T)] $*" | tee -a "$out/run.log"; }

stamp "machine: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1)"
stamp "$(python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)')"

stamp "bench $config (eager + compiled)"
timeout 150 "${mb[@]}" bench --config "$config" --compile --clips 64 --repeats 10 --out "$work/bench_sprites.json" 2>&1 | quiet >> "$out/run.log"
stamp "bench talking-head-256"
timeout 90 "${mb[@]}" bench --config talking-head-256 --clips 16 --repeats 3 --sample-steps 1,4,8 \
    ${taef2:+--tokenizer-path "$taef2"} --out "$work/bench_heads.json" 2>&1 | quiet >> "$out/run.log"
stamp "profile of the $config training step"
timeout 60 "${mb[@]}" bench --config "$config" --profile 2>&1 | quiet >> "$out/run.log"
python3 - "$work" "$out/bench.json" <<'EOF'
import json, sys
from pathlib import Path
parts = [json.loads(p.read_text()) for p in sorted(Path(sys.argv[1]).glob("bench_*.json"))]
if parts:
    merged = {**parts[0], "training": [t for p in parts for t in p["training"]],
              "sampling": {k: v for p in parts for k, v in p["sampling"].items()},
              "loader": [l for p in parts for l in p["loader"]], "errors": [e for p in parts for e in p.get("errors", [])]}
    Path(sys.argv[2]).write_text(json.dumps(merged, indent=2))
EOF

# Steps that fit the budget at the measured eager step time (+30 %: the real loop adds augmentations,
# EMA, logging and checkpoints; on an H200 it ran 13 % slower than the bench).
steps=$(python3 - "$out/bench.json" "$train_s" "$config" <<'EOF'
import json, sys
try:
    rows = json.load(open(sys.argv[1]))["training"]
    step_s = [r["step_s"] for r in rows if r["config"] == sys.argv[3] and not r["compiled"]][0]
except Exception:
    step_s = 0.1
print(max(200, int(float(sys.argv[2]) / (step_s * 1.3))))
EOF
)
stamp "train $config for $steps steps (budget ${train_s}s), then GIF and full test-split evaluation"
"${mb[@]}" demo --config "$config" --sheets "$sheets" --out "$work/demo" --steps "$steps" 2>&1 | quiet >> "$out/run.log"
cp "$work/demo/eval.json" "$out/eval.json" 2>/dev/null
cp "$work/demo/transfer.gif" "$out/transfer.gif" 2>/dev/null
cp "$work/demo/$config/metrics.jsonl" "$out/metrics.jsonl" 2>/dev/null

stamp "few-step study (300 test clips)"
for sampler in euler heun; do
  counts=$([ "$sampler" = euler ] && echo 1,2,4,8 || echo 4,8,50)
  "${mb[@]}" evaluate --checkpoint "$work/demo/$config" --judge "$work/demo/judge.safetensors" --clips 300 \
      --sampler "$sampler" --step-study "$counts" --out "$work/steps_$sampler" 2>&1 | quiet >> "$out/run.log"
  cat "$work/steps_$sampler/steps.md" >> "$out/steps.md" 2>/dev/null
done
stamp "done"
