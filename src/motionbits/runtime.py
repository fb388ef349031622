"""Device and mixed-precision choices shared by training, evaluation and benchmarks."""
from __future__ import annotations

import contextlib

import torch


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def cpu_has_fast_bf16() -> bool:
    # AMX (Sapphire Rapids and later) makes CPU bf16 matmuls ~4x faster than fp32; without it
    # bf16 on the CPU is emulated and slower, so autocast only where the hardware helps.
    try:
        with open("/proc/cpuinfo") as f:
            return "amx_bf16" in f.read()
    except OSError:  # not Linux: stay in fp32, always correct
        return False


def use_bf16(device: torch.device, amp: str = "auto") -> bool:
    if amp == "off":
        return False
    if amp == "bf16":
        return True
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_fast_bf16()


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on the given device, or a no-op."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
