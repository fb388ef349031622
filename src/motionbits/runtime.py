"""Device and mixed-precision choices shared by training, evaluation and benchmarks."""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os

import torch


def pick_device(name: str = "auto") -> torch.device:
    """auto (CUDA when there is one), cpu, cuda or cuda:N; one line for a device that is not here."""
    from motionbits.errors import MotionbitsError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise MotionbitsError(f"device {name!r}: not a device name (auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise MotionbitsError(f"device {name!r}: this machine has no CUDA GPU (use cpu or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise MotionbitsError(f"device {name!r}: there are {torch.cuda.device_count()} CUDA devices")
    elif device.type != "cpu":
        raise MotionbitsError(f"device {name!r}: only cpu and cuda are supported")
    return device


def flush_denormals() -> None:
    """Treat denormal floats as zero on the CPU, in this thread and in the worker threads torch
    starts after it.

    Adam's second moments of parameters with tiny gradients sink into the denormal range, where x86
    arithmetic is many times slower: an fp32 `sprites-cpu` step went from 0.8 to 1.8 s over 700
    steps with the flag set too late. It lives in each thread's MXCSR register; torch's OpenMP
    workers copy it from the thread that starts them and keep their own once started, so this must
    run before the process's first parallel operation: the command line calls it first thing."""
    torch.set_flush_denormal(True)


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks for reuse (CPU training).

    A CPU training step frees and re-allocates the same large activation buffers every step; by
    default glibc hands blocks above a few MB back to the kernel and page-faults them in again
    (system time). Raising the mmap and trim thresholds (mallopt) keeps them in the heap;
    docs/performance.md has the measured difference. The process keeps its peak memory in exchange.
    False where there is no glibc (macOS, Windows, musl) or with MOTIONBITS_KEEP_FREED_MEMORY=0 in
    the environment (to measure the difference): nothing changes then."""
    name = ctypes.util.find_library("c")
    if os.environ.get("MOTIONBITS_KEEP_FREED_MEMORY", "1") == "0" or name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # no such library, or a libc without mallopt
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 1 << 30)) and bool(mallopt(m_trim_threshold, (1 << 31) - 1))


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
