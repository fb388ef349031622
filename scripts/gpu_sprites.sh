#!/usr/bin/env bash
# The Sprites benchmark on one lent GPU in a fixed time budget, end to end: `motionbits demo
# --config CONFIG --max-minutes TRAIN_MINUTES` (compose the data, train with torch.compile, write the
# transfer GIF, evaluate on the whole test split). A judge trained beforehand (`motionbits evaluate`
# trains and saves one on the training split) is copied in so the lease is not spent training it.
# If the compiled run dies before its first checkpoint, the rest of the budget trains it eagerly.
# Everything worth keeping lands in OUT_DIR (at most 8 files).
#
# usage: scripts/gpu_sprites.sh SHEETS_DIR OUT_DIR [TRAIN_MINUTES] [JUDGE] [CONFIG]
#   COMPILE=0 trains eagerly (a budget of a minute or two loses too much of it to compiling);
#   CLIPS=N evaluates N test clips instead of the config's number (sprites: all 2664);
#   STEPS=N sets train.steps, so the cosine learning-rate decay ends inside the budget (a budget
#   that stops the run early leaves the rate near its peak: the H100 run of results/h100-sprites
#   stopped at step 2950 of 60000). Size it from the clips/s of an earlier run.
set -uo pipefail
sheets=$1
out=$2
minutes=${3:-5}
judge=${4:-}
config=${5:-sprites}
work=${WORK:-/tmp/motionbits-gpu}
mkdir -p "$out" "$work/demo"
mb=(python3 -m motionbits.cli)
quiet() { tr '\r' '\n' | grep -v -E '[0-9]+%\|' ; }  # drop progress-bar redraws from logs
stamp() { echo "[$(date +%T)] $*" | tee -a "$out/run.log"; }
started=$(date +%s)

stamp "machine: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1)"
stamp "$(python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)')"
[ -n "$judge" ] && cp "$judge" "$work/demo/judge.safetensors"

# The config with train.compile on (same model and schedule); prints the run folder's name, which
# is the config's name as load_config gives it (the file's stem when the file names none).
name=$(python3 - "$config" "$work/compiled.yaml" "${COMPILE:-1}" <<'EOF'
import sys, yaml
from motionbits.config import resolve_config_path
path = resolve_config_path(sys.argv[1])
values = yaml.safe_load(path.read_text())
values.setdefault("name", path.stem)
values.setdefault("train", {})["compile"] = sys.argv[3] != "0"
yaml.safe_dump(values, open(sys.argv[2], "w"))
print(values["name"])
EOF
) || exit
run=$work/demo/$name

clips=${CLIPS:+--clips $CLIPS}
steps=${STEPS:+--steps $STEPS}
stamp "demo: $config (compile ${COMPILE:-1}, steps ${STEPS:-as configured}), training for $minutes min"
"${mb[@]}" demo --config "$work/compiled.yaml" --sheets "$sheets" --out "$work/demo" --max-minutes "$minutes" $clips $steps 2>&1 | quiet >> "$out/run.log"
if [ ! -f "$work/demo/eval.json" ] && [ ! -f "$run/last.pt" ]; then
  left=$(python3 -c "print(max(0.5, $minutes - ($(date +%s) - $started) / 60))")
  stamp "the compiled run left no checkpoint: eager for $left min"
  "${mb[@]}" demo --config "$config" --sheets "$sheets" --out "$work/demo" --max-minutes "$left" $clips $steps 2>&1 | quiet >> "$out/run.log"
fi
for f in eval.json eval.md transfer.gif transfer.png; do cp "$work/demo/$f" "$out/" 2>/dev/null; done
cp "$run/metrics.jsonl" "$out/metrics.jsonl" 2>/dev/null
stamp "done"
