"""The GELU A/B of docs/performance.md: one model, the tanh and the exact form alternating.

    python ab_gelu.py sprites-cpu; python ab_gelu.py sprites-cpu-fp32.yaml
"""
import sys, time, torch
from motionbits.config import load_config
from motionbits.bench import training_step
from motionbits.runtime import keep_freed_memory
keep_freed_memory()
cfg = load_config(sys.argv[1])
model, step, _ = training_step(cfg, torch.device("cpu"))
def set_gelu(form):
    for m in model.modules():
        if isinstance(m, torch.nn.GELU): m.approximate = form
for _ in range(3): step()
res = {"tanh": [], "none": []}
for r in range(4):
    for form in ("tanh", "none"):
        set_gelu(form); step()
        t = time.perf_counter()
        for _ in range(8): step()
        res[form].append((time.perf_counter() - t) / 8)
for k, v in res.items(): print(sys.argv[1], k, " ".join(f"{x:.3f}" for x in v), "min", f"{min(v):.3f}")
