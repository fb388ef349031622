#!/usr/bin/env bash
# One short GPU lease, two jobs side by side on the one GPU, each with a wall-clock training budget:
#   heads:   talking-head-256 end to end: the talking-head videos decoded at 256x256 (PyAV) and split
#            by person, taef2 latents, training for HEADS_MIN minutes, the held-out video evaluation
#            and a side-by-side transfer MP4 between two held-out people;
#   sprites: sprites-set (the GPU Sprites config with the patch-set content reader): Sprites composed
#            from the sheets, training for SPRITES_MIN minutes, evaluation on 500 test clips, then
#            the motion prior on that model (prior-sprites, trained and evaluated: GPU generation).
# A lease is minutes, not the configs' 200k / 60k steps: the derived configs below keep the models
# and change only what a run of a few hundred steps needs (steps, warm-up, EMA, checkpoint period).
# What is worth keeping lands in OUT as soon as it exists (a command cut short still returns it;
# at most 8 files come back from a lent machine).
#
# usage: scripts/gpu_lease.sh SHEETS VIDEOS TAEF2 OUT [HEADS_MIN] [SPRITES_MIN] [JUDGE]
# A dry run on a CPU first: BATCH=4 HEADS_CLIPS=2 SPRITES_CLIPS=20 PRIOR_CLIPS=8 PRIOR_STEPS=5, budgets of 0.1.
set -uo pipefail
sheets=$1 videos=$2 taef2=$3 out=$4
heads_min=${5:-4} sprites_min=${6:-3} judge=${7:-}
work=${WORK:-/tmp/motionbits-lease}
mkdir -p "$out" "$work"
mb=(python3 -m motionbits.cli)
quiet() { tr '\r' '\n' | grep -v -E '[0-9]+%\|' ; }  # drop progress-bar redraws from logs
stamp() { echo "[$(date +%T)] $*" | tee -a "$out/heads.log" "$out/sprites.log"; }

heads() {
  local log=$out/heads.log
  "${mb[@]}" data video "$videos" "$work/heads256" --size 256 --frames 16 --stride 8 \
      --identity-regex 'mead_(\w+?)_' 2>&1 | quiet >> "$log" || return
  sed -e "s#tokenizer_path: .*#tokenizer_path: $taef2#" -e 's/steps: 200000/steps: 1500/' \
      -e 's/warmup_steps: 2000/warmup_steps: 100/' -e 's/lr: 1.0e-4/lr: 3.0e-4/' \
      -e 's/ema_decay: 0.9999/ema_decay: 0.998/' -e 's/checkpoint_every: 5000/checkpoint_every: 500/' \
      -e 's/sample_every: 5000/sample_every: 0/' -e 's/log_every: 100/log_every: 50/' \
      -e "s/batch_size: 32/batch_size: ${BATCH:-32}/" \
      src/motionbits/configs/talking-head-256.yaml > "$work/talking-head-256.yaml"
  "${mb[@]}" train --config "$work/talking-head-256.yaml" --data "$work/heads256" --out "$work/heads" \
      --max-minutes "$heads_min" 2>&1 | quiet >> "$log" || return
  cp "$work/heads/metrics.jsonl" "$out/heads_metrics.jsonl"
  "${mb[@]}" evaluate --checkpoint "$work/heads" --clips "${HEADS_CLIPS:-96}" --out "$work/heads_eval" 2>&1 | quiet >> "$log"
  cp "$work/heads_eval/eval.json" "$out/heads_eval.json"
  local pair
  pair=$(python3 -c "import json,sys; m=json.load(open(sys.argv[1])); t=[v['path'] for v in m['videos'] if v['split']=='test']; print(t[0], t[-1])" "$work/heads256/manifest.json")
  set -- $pair
  "${mb[@]}" transfer --checkpoint "$work/heads" --content "$videos/$1" --motion "$videos/$2" --frames 96 \
      --side-by-side -o "$out/heads_transfer.mp4" 2>&1 | quiet >> "$log"
}

sprites() {
  local log=$out/sprites.log
  "${mb[@]}" data sprites --sheets "$sheets" --out "$work/sprites" 2>&1 | quiet >> "$log" || return
  sed -e 's/steps: 60000/steps: 1500/' -e 's/checkpoint_every: 2000/checkpoint_every: 500/' \
      -e 's/sample_every: 2000/sample_every: 0/' -e 's/log_every: 100/log_every: 50/' \
      -e "s/batch_size: 128/batch_size: ${BATCH:-128}/" \
      src/motionbits/configs/sprites-set.yaml > "$work/sprites-set.yaml"
  "${mb[@]}" train --config "$work/sprites-set.yaml" --data "$work/sprites" --out "$work/sprites-set" \
      --max-minutes "$sprites_min" 2>&1 | quiet >> "$log" || return
  cp "$work/sprites-set/metrics.jsonl" "$out/sprites_metrics.jsonl"
  local j=${judge:-$work/judge.safetensors}
  "${mb[@]}" evaluate --checkpoint "$work/sprites-set" --judge "$j" --clips "${SPRITES_CLIPS:-500}" --out "$work/sprites_eval" 2>&1 | quiet >> "$log"
  cp "$work/sprites_eval/eval.json" "$out/sprites_eval.json"
  sed -e "s#checkpoint: .*#checkpoint: $work/sprites-set/last.pt#" -e "s/steps: 600/steps: ${PRIOR_STEPS:-600}/" src/motionbits/configs/prior-sprites.yaml > "$work/prior.yaml"
  "${mb[@]}" train --config "$work/prior.yaml" --out "$work/prior" 2>&1 | quiet >> "$log" || return
  "${mb[@]}" evaluate --checkpoint "$work/sprites-set" --prior "$work/prior/prior.pt" --judge "$j" --clips "${PRIOR_CLIPS:-300}" \
      --out "$work/prior_eval" 2>&1 | quiet >> "$log"
  cp "$work/prior_eval/generation_eval.json" "$out/generation_eval.json"
}

stamp "machine: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1)"
stamp "$(python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)')"
stamp "start: heads ($heads_min min of training) and sprites ($sprites_min min) side by side"
heads & heads_pid=$!
sprites & sprites_pid=$!
wait $heads_pid; stamp "heads finished (rc $?)"
wait $sprites_pid; stamp "sprites finished (rc $?)"

stamp "done"
