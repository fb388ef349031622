"""Where a sprites-cpu training step's time goes in the training loop's own order (fp32), part by part.

    python results/cpu-1.1-sprites/bench/loop_parts.py DATA [STEPS]

DATA: the demo's Sprites data (`motionbits data sprites --out DATA`). Prints the mean seconds a
step of each part over STEPS steps (default 40) after 5 warm-up steps.
"""
import sys
import time

import torch

from motionbits.config import load_config
from motionbits.data.clips import load_clips
from motionbits.training.bcd import BCDTask, schedule_of
from motionbits.training.loop import Trainer, update_ema

cfg = load_config("sprites-cpu")
cfg.data.root = sys.argv[1]
cfg.train.amp = "off"
dev = torch.device("cpu")
clips = load_clips(cfg, "train", device=dev)
cfg.diffusion.sigma_data = round(clips.latent_std, 4)
task = BCDTask(cfg, clips)
tr = Trainer(task, schedule_of(cfg), None, dev, progress=False)
task.trainer = tr
s = tr.schedule
parts = {k: 0.0 for k in ["draw", "latents", "forward", "backward", "clip", "opt", "ema", "total"]}
N, W = int(sys.argv[2]) if len(sys.argv) > 2 else 40, 5
tr.model.train()
for i in range(N + W):
    t0 = time.perf_counter()
    draws = task.draw(tr.generator, s.batch_size)
    t1 = time.perf_counter()
    z = clips.latents(draws.index)
    t2 = time.perf_counter()
    out = tr.forward(z, draws)
    t3 = time.perf_counter()
    out["loss"].backward()
    t4 = time.perf_counter()
    torch.nn.utils.clip_grad_norm_(tr.model.parameters(), s.grad_clip)
    t5 = time.perf_counter()
    tr.optimizer.step(); tr.optimizer.zero_grad(set_to_none=True)
    t6 = time.perf_counter()
    update_ema(tr.ema, tr.model, 0.995)
    t7 = time.perf_counter()
    if i >= W:
        for k, a, b in [("draw", t0, t1), ("latents", t1, t2), ("forward", t2, t3), ("backward", t3, t4),
                        ("clip", t4, t5), ("opt", t5, t6), ("ema", t6, t7), ("total", t0, t7)]:
            parts[k] += (b - a) / N
print({k: round(v, 4) for k, v in parts.items()}, "threads", torch.get_num_threads())
