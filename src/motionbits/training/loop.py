"""The one training loop: the BCD model (training/bcd.py), the motion prior (training/prior.py) and
the Sprites judge (evaluation/judge.py) all train through `Trainer.fit`.

The loop owns: AdamW with linear warm-up and cosine decay to 10 % of the peak (`learning_rate`),
gradient clipping, an EMA copy, micro-batches, bf16 autocast, torchrun DDP, the progress bar, the
metrics log (metrics.jsonl and TensorBoard), checkpoints and exact resume. A task owns its model,
the random draws of one step (an object with `.shard(part, parts)` and `.to(device)`) and its loss.

Every random draw is made for the *global* batch from one seeded generator and each process keeps
its slice, so N processes compute the update one process computes on the same batch. Checkpoints
(model, EMA, optimizer, step, generator and every RNG state) are written atomically every
`checkpoint_every` steps and every `checkpoint_minutes` of training, so a killed run loses at most
that much; started again on the same folder it continues bit for bit, and the metrics log keeps
each step once.
"""
from __future__ import annotations

import copy
import json
import math
import os
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from motionbits.atomic_files import write_text_atomic
from motionbits.errors import MotionbitsError
from motionbits.runtime import autocast, flush_denormals, keep_freed_memory, pick_device, use_bf16
from motionbits.training import checkpoint as ckpt_io


@dataclass
class Schedule:
    """How long and how fast a task trains."""
    steps: int
    batch_size: int               # global clips per step
    lr: float
    warmup_steps: int = 100
    grad_accum: int = 1
    weight_decay: float = 0.0     # on matrices and embeddings only
    grad_clip: float = 1.0
    ema_decay: float | None = 0.999   # None: no EMA copy
    seed: int = 0
    amp: str = "auto"
    compile: bool = False
    log_every: int = 50
    checkpoint_every: int = 250
    checkpoint_minutes: float = 5.0


def learning_rate(s: Schedule, step: int) -> float:
    """Linear warm-up, then cosine decay to 10 % of the peak at `steps` (held there after)."""
    if step < s.warmup_steps:
        return s.lr * (step + 1) / s.warmup_steps
    progress = (step - s.warmup_steps) / max(1, s.steps - s.warmup_steps)
    return s.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


class Task(ABC):
    """One kind of model to train."""
    name: str = "train"                 # progress-bar and TensorBoard label
    checkpoint_format: str = "motionbits"
    shown_metrics: tuple[str, ...] = ()  # printed on each log line after the loss
    model: nn.Module

    @abstractmethod
    def draw(self, generator: torch.Generator, batch_size: int) -> Any:
        """Every random draw of one global step."""

    @abstractmethod
    def loss(self, module: nn.Module, draws: Any, device: torch.device) -> dict[str, torch.Tensor]:
        """{"loss": scalar to minimise, other scalars to log} for a process's share of the draws;
        `module` is the model, or its DDP / compiled wrapper."""

    def describe(self) -> dict[str, Any]:
        """Stored in the checkpoint beside the weights (the config a run can be rebuilt from)."""
        return {}

    def check_resume(self, checkpoint: dict[str, Any]) -> None:
        """Raise a MotionbitsError when `checkpoint` belongs to another setup."""

    def log_extras(self) -> dict[str, float]:
        """More figures for the log line (read at log time, from the model)."""
        return {}

    def log_pictures(self, writer, step: int) -> None:
        """Optional TensorBoard pictures at log time."""


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_name: str) -> tuple[Dist, torch.device]:
    """Reads torchrun's environment; without it, a single process."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        return Dist(), pick_device(device_name)
    d = Dist(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    device = pick_device(device_name)
    if device.type == "cuda":
        torch.cuda.set_device(d.local_rank)
        device = torch.device("cuda", d.local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return d, device


def _logged_step(raw: bytes) -> int | None:
    """The step of a metrics.jsonl line, or None for a line that is not a log line (cut short by
    a kill, not UTF-8, not JSON, a list, a step that is not a whole number)."""
    try:
        entry = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    step = entry.get("step") if isinstance(entry, dict) else None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    # One multi-tensor call, not a Python loop over parameters: 3x faster for the CPU demo's model.
    with torch.no_grad():
        torch._foreach_lerp_(list(ema.parameters()), [p.detach() for p in model.parameters()], 1 - decay)
        for e, b in zip(ema.buffers(), model.buffers()):
            e.copy_(b)


class Trainer:
    """Trains `task.model` by `schedule`, checkpointing to run_dir/<checkpoint_name> (run_dir None:
    in memory only, no checkpoint or log). `max_steps` stops early as if killed (tests);
    `max_minutes` stops at a wall-clock budget, saving either way."""

    def __init__(self, task: Task, schedule: Schedule, run_dir: str | Path | None, device: torch.device,
                 dist_info: Dist | None = None, fresh: bool = False, progress: bool = True,
                 max_steps: int | None = None, max_minutes: float | None = None,
                 checkpoint_name: str = "last.pt"):
        self.task, self.schedule, self.device = task, schedule, device
        self.dist = dist_info or Dist()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.checkpoint_path = self.run_dir / checkpoint_name if self.run_dir else None
        self.progress = progress and self.dist.main
        self.stop_at = min(schedule.steps, max_steps) if max_steps else schedule.steps
        self.max_seconds = max_minutes * 60 if max_minutes else None
        s = schedule
        if s.batch_size % (self.dist.world * s.grad_accum):
            raise MotionbitsError(f"train.batch_size={s.batch_size} is not divisible by "
                                  f"processes x grad_accum = {self.dist.world} x {s.grad_accum}")
        if device.type == "cpu":
            flush_denormals()  # this thread at least (Python API); the command line set it for all
            keep_freed_memory()
        self.model = task.model.to(device)
        self.ema = copy.deepcopy(self.model).requires_grad_(False).eval() if s.ema_decay is not None else None
        decay = [p for p in self.model.parameters() if p.ndim >= 2]
        rest = [p for p in self.model.parameters() if p.ndim < 2]
        # fused: one kernel for every parameter, on CPUs too (8x faster than the per-parameter loop
        # for the CPU demo's 11 M parameters)
        self.optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": s.weight_decay},
                                            {"params": rest, "weight_decay": 0.0}],
                                           lr=s.lr, betas=(0.9, 0.99), fused=True)
        self.bf16 = use_bf16(device, s.amp)
        self.step = 0
        self.generator = torch.Generator().manual_seed(s.seed)
        self.resumed_from: int | None = None
        if self.checkpoint_path is not None:
            self._resume_or_start(fresh)
        wrapped = (DistributedDataParallel(self.model, device_ids=[device] if device.type == "cuda" else None)
                   if self.dist.world > 1 else self.model)
        self.forward = torch.compile(wrapped) if s.compile else wrapped
        self.writer = None
        if self.run_dir is not None and self.dist.main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"))

    # ---- state ------------------------------------------------------------------------------
    def _resume_or_start(self, fresh: bool) -> None:
        if self.dist.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            ckpt_io.remove_stale_temporaries(self.checkpoint_path)
        if self.checkpoint_path.exists() and not fresh:
            ckpt = ckpt_io.read_checkpoint(self.checkpoint_path, self.task.checkpoint_format)
            self.task.check_resume(ckpt)
            self.model.load_state_dict(ckpt["model"])
            if self.ema is not None:
                self.ema.load_state_dict(ckpt["ema"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.step = self.resumed_from = ckpt["step"]
            self.generator.set_state(ckpt["generator"])
            ckpt_io.set_rng_state(ckpt["rng"])
            if self.dist.main:
                print(f"resuming {self.checkpoint_path} at step {self.step}")
        elif self.dist.main:
            (self.run_dir / "metrics.jsonl").unlink(missing_ok=True)   # a fresh run starts a fresh log
        if self.dist.main:
            self._trim_metrics()

    def _trim_metrics(self) -> None:
        """Drop log lines written after the checkpoint (a killed run logs them again when resumed)."""
        path = self.run_dir / "metrics.jsonl"
        if not path.exists():
            return
        kept, bad = [], []
        lines = path.read_bytes().splitlines()
        for number, raw in enumerate(lines, 1):
            step = _logged_step(raw)
            if step is None:   # a line cut off by the kill, or one that is not ours: dropped
                bad.append(number)
            elif step <= self.step:
                kept.append(raw.decode())
        if [n for n in bad if n != len(lines)]:  # more than the kill's cut-off last line: say so
            print(f"warning: {path}: dropped {len(bad)} line(s) that are not log lines (lines "
                  f"{', '.join(map(str, bad[:5]))}{', ...' if len(bad) > 5 else ''}: not UTF-8, not JSON, or not an "
                  "object with a whole-number step)", file=sys.stderr)
        write_text_atomic(path, "".join(f"{line}\n" for line in kept))

    def state(self) -> dict[str, Any]:
        return {"format": self.task.checkpoint_format, "version": ckpt_io.FORMAT_VERSION, **self.task.describe(),
                "model": self.model.state_dict(), "ema": None if self.ema is None else self.ema.state_dict(),
                "optimizer": self.optimizer.state_dict(), "step": self.step,
                "generator": self.generator.get_state(), "rng": ckpt_io.rng_state()}

    def save(self) -> None:
        if self.checkpoint_path is not None and self.dist.main:
            ckpt_io.save_atomic(self.state(), self.checkpoint_path)
        self.saved_at = time.time()

    @property
    def inference_model(self) -> nn.Module:
        """The EMA copy (the model itself without one), in eval mode."""
        return (self.ema if self.ema is not None else self.model).eval()

    # ---- one optimisation step -------------------------------------------------------------------
    def train_step(self) -> dict[str, torch.Tensor]:
        s = self.schedule
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(s, self.step)
        draws = self.task.draw(self.generator, s.batch_size).shard(self.dist.rank, self.dist.world)
        totals: dict[str, torch.Tensor] = {}
        for micro in range(s.grad_accum):
            with autocast(self.device, self.bf16):
                out = self.task.loss(self.forward, draws.shard(micro, s.grad_accum), self.device)
            (out["loss"] / s.grad_accum).backward()
            for k, v in out.items():
                totals[k] = totals.get(k, 0) + v.detach().float() / s.grad_accum
        totals["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            update_ema(self.ema, self.model, min(s.ema_decay, (1 + self.step) / (10 + self.step)))  # short EMA warm-up
        self.step += 1
        return totals

    def fit(self) -> Path | None:
        s = self.schedule
        bar = tqdm(total=self.stop_at, initial=self.step, desc=self.task.name, disable=not self.progress,
                   dynamic_ncols=True)
        running: dict[str, torch.Tensor] = {}
        count, started = 0, time.time()
        self.saved_at = time.time()
        deadline = time.time() + self.max_seconds if self.max_seconds else None
        self.model.train()
        while self.step < self.stop_at:
            if deadline is not None and self._out_of_time(deadline):
                if self.dist.main:
                    tqdm.write(f"time budget of {self.max_seconds / 60:g} min reached at step {self.step} of "
                               f"{s.steps}: stopping with the learning rate at {learning_rate(s, self.step):.2g} "
                               f"(peak {s.lr:g}); --steps sized to the budget lets the cosine decay finish")
                if count:
                    self._log(running, count, started)
                break
            metrics = self.train_step()
            for k, v in metrics.items():  # accumulated on the device: no host sync per step
                running[k] = running.get(k, 0) + v
            count += 1
            bar.update(1)
            if self.step % s.log_every == 0 or self.step == self.stop_at:
                self._log(running, count, started)
                running, count, started = {}, 0, time.time()
            due = self.step % s.checkpoint_every == 0 or time.time() - self.saved_at >= s.checkpoint_minutes * 60
            if due and self.step < self.stop_at:
                self.save()
        bar.close()
        self.save()
        if self.writer is not None:
            self.writer.close()
        if dist.is_initialized():
            dist.barrier()
        return self.checkpoint_path

    def _out_of_time(self, deadline: float) -> bool:
        """Past the wall-clock budget? One process's clock decides for all (broadcast every
        log_every steps), so every DDP rank stops at the same step."""
        if not dist.is_initialized():
            return time.time() >= deadline
        if self.step % self.schedule.log_every:
            return False
        late = torch.tensor([float(time.time() >= deadline)], device=self.device)
        dist.broadcast(late, src=0)
        return bool(late.item())

    def _log(self, running: dict[str, torch.Tensor], count: int, started: float) -> None:
        keys = sorted(running)
        stacked = torch.stack([running[k].float() / count for k in keys])
        if dist.is_initialized():  # every process logs the global means
            dist.all_reduce(stacked)
            stacked /= self.dist.world
        means = dict(zip(keys, stacked.tolist()))
        means.update(self.task.log_extras())
        means["clips_per_s"] = count * self.schedule.batch_size / max(time.time() - started, 1e-9)
        self.last_metrics = means
        if not self.dist.main:
            return
        if self.run_dir is not None:
            log = self.run_dir / "metrics.jsonl"
            try:   # a line cut short by a full disk is dropped on resume, like a kill's
                with open(log, "a") as f:
                    f.write(json.dumps({"step": self.step, **means}) + "\n")
            except OSError as err:   # the buffered write fails on close, naming no file
                raise OSError(err.errno, err.strerror, str(log)) from None
        if self.writer is not None:
            for k, v in means.items():
                self.writer.add_scalar(f"{self.task.name}/{k}", v, self.step)
            self.writer.add_scalar(f"{self.task.name}/lr", learning_rate(self.schedule, self.step), self.step)
            self.task.log_pictures(self.writer, self.step)
        if self.progress:
            shown = ", ".join(f"{k} {means[k]:.4g}" for k in ("loss", *self.task.shown_metrics) if k in means)
            tqdm.write(f"step {self.step}: {shown}, {means['clips_per_s']:.1f} clips/s")
