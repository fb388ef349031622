"""Training on a CPU as several one-thread processes (DDP over gloo) instead of one many-thread process.

A CPU training step of the small Sprites models is many small operations; torch's intra-op threads
share each one and wait for each other after every one, so two threads make a step only about
1.4 times faster than one. Two processes of one thread each, each taking half the batch and
averaging gradients once a step, waste none of that (docs/performance.md has the measurement).
The draws of a step are global (models/bcd.py), so N processes train what one process trains on
the same batch, up to the order of floating-point sums (tests/training/test_distributed.py).

`motionbits demo` and `motionbits train --processes N` start them here, as torchrun would:
RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT in each child's environment, read by
training/loop.py's setup_distributed.
"""
from __future__ import annotations

import os
import socket
import traceback
from pathlib import Path

from motionbits.config import Config
from motionbits.errors import MotionbitsError


def cpu_processes(cfg: Config, cores: int | None = None) -> int:
    """How many one-thread processes train `cfg` on this CPU: the most that divide its batch, at most
    one per core and at most 4 (beyond that the gradient averaging starts to cost more than it saves).
    1 on a GPU, where one process drives the device."""
    import torch

    from motionbits.runtime import pick_device

    if pick_device(cfg.train.device).type != "cpu":
        return 1
    cores = cores or _usable_cores()
    t = cfg.train
    return max(n for n in range(1, min(cores, 4) + 1) if t.batch_size % (n * t.grad_accum) == 0) \
        if torch.distributed.is_available() else 1


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_in_processes(cfg: Config, run_dir: str | Path, processes: int, **train_args) -> Path:
    """training/bcd.py's train(cfg, run_dir, **train_args) as `processes` one-thread DDP processes;
    returns the run's last.pt. A MotionbitsError in a process comes back as one here."""
    from motionbits.training.bcd import train

    if processes <= 1:
        return train(cfg, run_dir, **train_args)
    if "WORLD_SIZE" in os.environ:
        raise MotionbitsError("--processes starts its own processes: run it without torchrun")
    t = cfg.train
    if t.batch_size % (processes * t.grad_accum):
        raise MotionbitsError(f"--processes {processes}: train.batch_size {t.batch_size} does not divide into "
                              f"processes x grad_accum = {processes} x {t.grad_accum} equal shares")
    from multiprocessing import connection

    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    errors = context.SimpleQueue()
    port = free_port()
    workers = [context.Process(target=_worker, args=(rank, processes, port, cfg, str(run_dir), train_args, errors))
               for rank in range(processes)]
    for w in workers:
        w.start()
    try:  # until all end, or one fails (the others would wait for it in the next gradient average)
        running = list(workers)
        while running:
            for sentinel in connection.wait([w.sentinel for w in running]):
                ended = next(w for w in running if w.sentinel == sentinel)
                ended.join()
                running.remove(ended)
                if ended.exitcode:
                    running = []
                    break
    finally:  # Ctrl-C, or a process failed: none is left training on its own
        for w in workers:
            if w.is_alive():
                w.terminate()
                w.join()
    if not errors.empty():
        raise MotionbitsError(errors.get())
    failed = [w.exitcode for w in workers if w.exitcode]
    if failed:
        raise MotionbitsError(f"training in {processes} processes: a process ended with exit code {failed[0]}")
    return Path(run_dir) / "last.pt"


def _worker(rank: int, world: int, port: int, cfg: Config, run_dir: str, train_args: dict, errors) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    import torch
    import torch.distributed as dist

    from motionbits.runtime import flush_denormals
    from motionbits.training.bcd import train

    flush_denormals()           # before the first parallel operation (runtime.py says why)
    torch.set_num_threads(1)
    try:
        train(cfg, run_dir, **{**train_args, "progress": train_args.get("progress", True) and rank == 0})
    except MotionbitsError as e:
        errors.put(str(e))
        raise SystemExit(1)
    except BaseException:
        errors.put(f"training process {rank}: " + traceback.format_exc().strip().splitlines()[-1])
        raise SystemExit(1)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
