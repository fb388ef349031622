#!/usr/bin/env bash
# The checks to run first whenever a GPU is lent, in one command of about 9 minutes on one H200
# (the bench alone takes 3):
#   1. speed: `motionbits bench` of BENCH_CONFIGS (eager and torch.compile: MFU of the training
#      step; transfer frames/s through the taef2 decoder);
#   2. Sprites to the paper's 100 % / 100 %: compose the benchmark, train `sprites` with
#      torch.compile for SPRITES_MIN minutes with train.steps sized from the measured step time (so
#      the cosine decay ends inside the budget), evaluate on the whole test split;
#   3. talking heads: HEADS is a folder of clips (built here at 128x128, 8 frames at 10 fps, split
#      by person) or a dataset packed by scripts/pack_frames.py (unpacked here, with the training
#      frames' lip points a lip model such as talking-head-person needs: no dlib there); train HEADS_CONFIG
#      for HEADS_MIN minutes (less if DEADLINE_S, seconds from the start, would be passed), and keep
#      its EMA weights in float16 (two parts under 16 MB) to be judged with the landmark
#      instruments on a CPU (dlib is not on the GPU machine):
#        cat heads_ema.pt.part* > RUN/last.pt; python scripts/own_footage.py --checkpoint RUN ...
# What is worth keeping lands in OUT as 8 files at most (all a lent machine sends back).
#
# usage: bash scripts/gpu_checks.sh OUT [HEADS]
# On the lent machine (python3 there has torch; PyAV and constriction travel as wheels in .whl):
#   once here:  echo /.whl/ >> .git/info/exclude; echo /.heads/ >> .git/info/exclude
#               python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#                 --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#                 -d .whl av constriction
#               motionbits train --config talking-head-person --data DATA/own128 --steps 1 --out RUN  # caches the lips
#               python scripts/pack_frames.py pack DATA/own128 .heads   # never committed
#   device run (carry .whl and .heads, timeout 600):
#               python3 -m pip install -q --no-index --no-deps --target .site .whl/*.whl &&
#               PYTHONPATH=$PWD/src:$PWD/.site HEADS_CONFIG=talking-head-person \
#                 bash scripts/gpu_checks.sh $OUT .heads
# A dry run on a CPU (minutes): DEVICE=cpu SPRITES_MIN=0.3 HEADS_MIN=0.3 CLIPS=16 COMPILE=0 \
#   BENCH_CONFIGS=sprites-cpu SPRITES_CONFIG=sprites-cpu bash scripts/gpu_checks.sh OUT_DIR HEADS
set -uo pipefail
out=$1 heads=${2:-}
sprites_min=${SPRITES_MIN:-3} heads_min=${HEADS_MIN:-3} deadline_s=${DEADLINE_S:-0}
sprites_config=${SPRITES_CONFIG:-sprites} heads_config=${HEADS_CONFIG:-talking-head-cpu}
device=${DEVICE:-cuda} compile=${COMPILE:-1}
work=${WORK:-${TMPDIR:-/tmp}/motionbits-gpu}
mkdir -p "$out" "$work"
export PYTHONUNBUFFERED=1
mb=(python3 -m motionbits.cli)
log=$out/run.log
quiet() { tr '\r' '\n' | grep -v -E '[0-9]+%\|' ; }   # progress-bar redraws stay out of the log
stamp() { echo "[$(date +%T)] $*" | tee -a "$log"; }

stamp "machine: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)"
stamp "$(python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)')"

# 1. speed
"${mb[@]}" bench --device "$device" --config ${BENCH_CONFIGS:-sprites $heads_config} --sample-steps 1,2,8 \
    --repeats 3 $([ "$compile" = 1 ] && echo --compile) --out "$out/bench.json" 2>&1 | quiet >> "$log"
stamp "bench done"

# steps_for CONFIG MINUTES COMPILED: the steps that fit the minutes at the step time the bench
# measured for CONFIG (another config's when it was not benched), so the cosine decay ends in time;
# times 0.55, since on an H200 the training loop (compile, EMA, logging, checkpoints) took 1.4-1.8
# times the bench's step (results/h200-1.1-checks) and a run cut by --max-minutes ends mid-decay
steps_for() {
python3 - "$out/bench.json" "$1" "$2" "$3" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))["training"]
want_compiled = sys.argv[4] == "1"
rows = [r for r in rows if r["config"] == sys.argv[2]] or rows
best = [r for r in rows if r["compiled"] == want_compiled] or rows
print(max(50, int(float(sys.argv[3]) * 60 / best[-1]["step_s"] * 0.55)), best[-1]["step_s"])
EOF
}

# 2. Sprites: steps sized from the measured step time of the config as it will train (SPRITES_MIN=0:
# skipped, every minute to the talking heads)
if [ "$sprites_min" != 0 ]; then
"${mb[@]}" data sprites --out "$work/sprites" 2>&1 | quiet >> "$log"
read -r steps step_s < <(steps_for "$sprites_config" "$sprites_min" "$compile")
stamp "sprites: $sprites_config, $steps steps at ${step_s}s/step measured, $sprites_min min budget"
python3 - "$sprites_config" "$work/sprites.yaml" "$compile" <<'EOF'
import sys, yaml
yaml.safe_dump({"base": sys.argv[1], "name": "gpu-sprites", "train": {"compile": sys.argv[3] == "1"}}, open(sys.argv[2], "w"))
EOF
"${mb[@]}" train --config "$work/sprites.yaml" --data "$work/sprites" --out "$work/gpu-sprites" --device "$device" \
    --steps "$steps" --max-minutes "$sprites_min" 2>&1 | quiet >> "$log"
cp "$work/gpu-sprites/metrics.jsonl" "$out/sprites_metrics.jsonl" 2>/dev/null
"${mb[@]}" evaluate --checkpoint "$work/gpu-sprites" --device "$device" ${CLIPS:+--clips $CLIPS} \
    --out "$work/sprites_eval" 2>&1 | quiet >> "$log"
cp "$work/sprites_eval/eval.md" "$out/sprites_eval.md" 2>/dev/null
cp "$work/sprites_eval/eval.json" "$out/sprites_eval.json" 2>/dev/null
stamp "sprites done"
fi

# 3. talking heads
if [ -n "$heads" ] && [ -f "$heads/train.mp4" ]; then
  python3 scripts/pack_frames.py unpack "$heads" "$work/heads" 2>&1 | quiet >> "$log"
elif [ -n "$heads" ] && [ -d "$heads" ]; then
  "${mb[@]}" data video "$heads" "$work/heads" --size 128 --frames 8 --stride 2 --fps 10 \
      --identity-regex 'mead_(\w+?)_' 2>&1 | quiet >> "$log"
fi
if [ -n "$heads" ] && [ -d "$work/heads" ]; then
  if [ "$deadline_s" -gt 0 ]; then   # leave a minute for saving the weights
    heads_min=$(python3 -c "print(round(max(0.5, min($heads_min, ($deadline_s - $SECONDS - 60) / 60)), 2))")
  fi
  read -r heads_steps heads_step_s < <(steps_for "$heads_config" "$heads_min" 0)
  stamp "talking heads: $heads_config, $heads_steps steps at ${heads_step_s}s/step measured, $heads_min min budget"
  "${mb[@]}" train --config "$heads_config" --data "$work/heads" --out "$work/gpu-heads" --device "$device" \
      --steps "$heads_steps" --max-minutes "$heads_min" 2>&1 | quiet >> "$log"
  cp "$work/gpu-heads/metrics.jsonl" "$out/heads_metrics.jsonl" 2>/dev/null
  stamp "talking heads trained"
  # the EMA weights alone in float16 (the resume state stays behind), in parts under 16 MB
  python3 - "$work/gpu-heads/last.pt" "$work/heads_ema.pt" <<'EOF'
import sys, torch
ckpt = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
slim = {k: ckpt[k] for k in ("format", "version", "config", "latent", "step") if k in ckpt}
ema = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["ema"].items()}
slim["model"] = slim["ema"] = ema   # one copy on disk: torch.save keeps shared tensors once
torch.save(slim, sys.argv[2])
EOF
  split -b 15m -d "$work/heads_ema.pt" "$out/heads_ema.pt.part" && stamp "heads weights: $(ls "$out" | grep -c part) parts"
  stamp "talking heads done"
else
  stamp "talking heads skipped: no clips given"
fi
stamp "done"
