"""Offline training of the D3S2 segmentation head on a frozen EfficientNet-Lite0.

``train(TrainConfig)``: Adam on per-pixel binary cross-entropy of the test crops' full-resolution logits,
cosine learning-rate decay, checkpoints every ``checkpoint_every`` steps and at each epoch end, validation
each epoch (mean IoU of the thresholded mask on pairs from held-out clips), a final report and the exported
head weights. Under torchrun (RANK / WORLD_SIZE set) it runs DistributedDataParallel (gloo on CPU, nccl
on CUDA); each rank draws its own pairs and only rank 0 writes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..config import section
from ..errors import CheckpointError, ConfigError
from ..nets.d3s2_head import (HeadConfig, SegmentationHead, backbone_features, crops_to_input, head_config_dict,
                              prepare_backbone, save_head)
from ..nets.efficientnet_lite import load_backbone
from .datasets import DEFAULT_SET_WEIGHTS, DEFAULT_VAL_CLIPS, discover
from .pairs import Batch, Pair, PairSampler, PairSettings, collate, validation_pairs

CHECKPOINT_FORMAT = "segtrack.d3s2_head_training/1"
# Settings a resumed run must share with the run it continues for its batches and steps to be the same.
_RESUME_FIXED = ("seed", "batch", "steps_per_epoch", "pairs", "head", "world_size", "data_root", "val_clips")


@dataclass(frozen=True)
class TrainSettings:
    """What `segtrack train --settings FILE` sets: the pairs' sampling and augmentation, the network's size."""
    pairs: PairSettings = section(PairSettings, "training pairs: geometry, sampling, augmentation")
    head: HeadConfig = section(HeadConfig, "the head's sizes and initial values")


@dataclass
class TrainConfig:
    data_root: str
    out: str
    epochs: int = 20
    steps_per_epoch: int = 250
    batch: int = 8  # pairs per step and process
    lr: float = 1e-3
    min_lr_factor: float = 0.02  # cosine decay to lr * this
    seed: int = 0
    val_clips: Tuple[str, ...] = DEFAULT_VAL_CLIPS
    val_every: int = 5  # every k-th frame of a validation clip is a test frame
    val_batch: int = 8
    checkpoint_every: int = 100
    stop_after: Optional[int] = None  # stop (with a checkpoint) once this many steps are done in all
    resume: bool = False
    export: Optional[str] = None  # default: <out>/d3s2_head.pt
    device: str = "cpu"
    threads: Optional[int] = None  # default on CPU: the process's share of the cores less its workers
    workers: int = 1  # data-loader processes per rank (0: in the training process)
    progress: bool = True
    set_weights: Dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SET_WEIGHTS))
    pairs: PairSettings = field(default_factory=PairSettings)
    head: HeadConfig = field(default_factory=HeadConfig)

    def __post_init__(self) -> None:
        for name in ("epochs", "steps_per_epoch", "batch", "checkpoint_every", "val_every", "val_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0 or not 0 < self.min_lr_factor <= 1:
            raise ConfigError("lr must be > 0 and min_lr_factor in (0, 1]")
        if self.workers < 0:
            raise ConfigError("workers must be >= 0")

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def plain(self) -> dict:
        out = dataclasses.asdict(self)
        out["val_clips"] = list(self.val_clips)
        return out


@dataclass
class TrainResult:
    head: SegmentationHead
    report: dict
    losses: List[float]  # loss of every step done so far (all runs of this output folder)


# --- distributed ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def distributed_from_env() -> Distributed:
    """torchrun's RANK / WORLD_SIZE / LOCAL_RANK, or a single process."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise ConfigError(f"bad RANK / WORLD_SIZE / LOCAL_RANK in the environment: {exc}") from exc
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"RANK {rank} / WORLD_SIZE {world} out of range")
    return Distributed(rank, world, local)


def _device(name: str, dist_info: Distributed) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device cuda requested but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", dist_info.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise ConfigError(f"device must be cpu, cuda, cuda:N or auto, got {name!r}")
    return device


def _all_mean(value: float, dist_info: Distributed, device: torch.device) -> float:
    if not dist_info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / dist_info.world_size


# --- data loading -----------------------------------------------------------------------------------

class StepBatches(torch.utils.data.Dataset):
    """Batch ``start + i`` of a rank's pair sequence; workers draw them ahead of the training step."""

    def __init__(self, sampler: PairSampler, batch: int, start: int, stop: int) -> None:
        self.sampler, self.batch, self.start, self.stop = sampler, batch, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int) -> Batch:
        return self.sampler.batch(self.start + i, self.batch)


def _worker_init(_: int) -> None:
    cv2.setNumThreads(1)  # the loader's processes already run in parallel
    torch.set_num_threads(1)


def _as_is(batch: Batch) -> Batch:
    return batch


def _batches(sampler: PairSampler, cfg: TrainConfig, start: int, stop: int):
    dataset = StepBatches(sampler, cfg.batch, start, stop)
    if cfg.workers == 0:
        return (dataset[i] for i in range(len(dataset)))
    # Spawned, not forked: OpenCV's thread pool deadlocks in a child forked after the parent used it.
    return iter(torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=cfg.workers,
                                            collate_fn=_as_is, worker_init_fn=_worker_init, prefetch_factor=2,
                                            multiprocessing_context="spawn"))


# --- steps ------------------------------------------------------------------------------------------

class Trainer:
    """The frozen backbone and the head (DDP-wrapped when distributed) on one device."""

    def __init__(self, cfg: TrainConfig, device: torch.device, dist_info: Distributed) -> None:
        self.cfg, self.device, self.dist = cfg, device, dist_info
        self.backbone = prepare_backbone(load_backbone("lite0"), device)
        torch.manual_seed(cfg.seed)  # identical initial heads on every rank (DDP also broadcasts rank 0's)
        self.head = SegmentationHead(cfg.head).to(device)
        self.optimizer = torch.optim.Adam(self.head.parameters(), lr=cfg.lr)
        self.model: torch.nn.Module = self.head
        if dist_info.enabled:
            ids = [device.index] if device.type == "cuda" else None
            self.model = DistributedDataParallel(self.head, device_ids=ids)

    def lr_at(self, step: int) -> float:
        cfg = self.cfg
        progress = min(step / max(cfg.total_steps - 1, 1), 1.0)
        return cfg.lr * (cfg.min_lr_factor + (1 - cfg.min_lr_factor) * 0.5 * (1 + math.cos(math.pi * progress)))

    def _tensors(self, batch: Batch):
        to = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(self.device)
        reference = backbone_features(self.backbone, crops_to_input(batch.reference, self.device), (8, 16))
        test = backbone_features(self.backbone, crops_to_input(batch.test, self.device))
        return reference, to(batch.coverage), test, to(batch.location), to(batch.mask)

    def step(self, batch: Batch, step: int) -> float:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(step)
        reference, coverage, test, location, mask = self._tensors(batch)
        self.model.train()
        logits = self.model(reference, coverage, test, location)
        loss = F.binary_cross_entropy_with_logits(logits[:, 0], mask)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def validate(self, pairs: Sequence[Pair]) -> Tuple[float, int]:
        """(sum of per-pair IoUs of the mask logits > 0, pair count) over this rank's share of ``pairs``."""
        self.head.eval()
        total, count = 0.0, 0
        for i in range(0, len(pairs), self.cfg.val_batch):
            batch = collate(pairs[i:i + self.cfg.val_batch])
            reference, coverage, test, location, mask = self._tensors(batch)
            predicted = self.head(reference, coverage, test, location)[:, 0] > 0
            truth = mask > 0.5
            inter = (predicted & truth).flatten(1).sum(1).double()
            union = (predicted | truth).flatten(1).sum(1).double()
            iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
            total += float(iou.sum())
            count += len(iou)
        return total, count


# --- checkpoints ------------------------------------------------------------------------------------

def checkpoint_dir(out: Path) -> Path:
    return Path(out) / "checkpoints"


def latest_checkpoint(out: Path) -> Optional[Path]:
    files = sorted(checkpoint_dir(out).glob("step_*.pt"))
    return files[-1] if files else None


def _rng_state(device: torch.device) -> dict:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def save_checkpoint(path: Path, trainer: Trainer, step: int, epoch: int, history: dict) -> Path:
    """Model, optimizer, step, epoch, RNG states and history; loadable with weights_only=True. Written to
    a temporary name first so an interrupted write never leaves a truncated latest checkpoint."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "model": trainer.head.state_dict(),
        "head_config": head_config_dict(trainer.head.config),
        "optimizer": trainer.optimizer.state_dict(),
        "step": step,
        "epoch": epoch,
        "rng": _rng_state(trainer.device),
        "history": history,
        "config": _resume_view(trainer.cfg, trainer.dist),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure means the file is unusable
        raise CheckpointError(f"cannot load training checkpoint {path}: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a segtrack head-training checkpoint")
    return state


def _resume_view(cfg: TrainConfig, dist_info: Distributed) -> dict:
    plain = cfg.plain()
    view = {k: plain[k] for k in _RESUME_FIXED if k in plain}
    view["world_size"] = dist_info.world_size
    view["data_root"] = str(Path(cfg.data_root).resolve())
    return json.loads(json.dumps(view))  # tuples -> lists, as stored


def _restore(trainer: Trainer, state: dict, path: Path) -> Tuple[int, dict]:
    stored, current = state["config"], _resume_view(trainer.cfg, trainer.dist)
    changed = sorted(k for k in current if stored.get(k) != current[k])
    if changed:
        raise ConfigError(f"cannot resume from {path}: {changed} differ from that run's "
                          f"({', '.join(f'{k}={stored.get(k)!r}' for k in changed)})")
    trainer.head.load_state_dict(state["model"], strict=True)
    trainer.optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"]["torch"])
    if "cuda" in state["rng"] and trainer.device.type == "cuda":
        torch.cuda.set_rng_state(state["rng"]["cuda"], trainer.device)
    return int(state["step"]), state["history"]


# --- report -----------------------------------------------------------------------------------------

def _machine(device: torch.device, dist_info: Distributed) -> dict:
    info = {"host": platform.node(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "device": str(device), "world_size": dist_info.world_size}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _loss_summary(losses: Sequence[float], steps_per_epoch: int) -> dict:
    if not losses:
        return {}
    arr = np.asarray(losses)
    window = max(1, min(100, len(arr) // 10))
    epochs = [float(arr[i:i + steps_per_epoch].mean()) for i in range(0, len(arr), steps_per_epoch)]
    return {"steps": len(arr), "first_mean": float(arr[:window].mean()), "last_mean": float(arr[-window:].mean()),
            "window": window, "min": float(arr.min()), "per_epoch_mean": epochs}


def build_report(cfg: TrainConfig, history: dict, step: int, device: torch.device, dist_info: Distributed,
                 export: Optional[Path], command: Sequence[str]) -> dict:
    return {
        "command": " ".join(shlex.quote(a) for a in command),
        "machine": _machine(device, dist_info),
        "config": cfg.plain(),
        "steps_done": step,
        "steps_total": cfg.total_steps,
        "wall_s": round(history["wall_s"], 1),
        "step_s": round(history["train_s"] / max(1, len(history["loss"])), 3),
        "train_loss": _loss_summary(history["loss"], cfg.steps_per_epoch),
        "validation": history["val"],
        "export": str(export) if export else None,
    }


def format_report(report: dict) -> str:
    loss = report["train_loss"]
    lines = [f"trained {report['steps_done']}/{report['steps_total']} steps in {report['wall_s']:.0f} s "
             f"({report['step_s']:.2f} s/step) on {report['machine']['device']} x{report['machine']['world_size']}"]
    if loss:
        lines.append(f"train loss: first {loss['window']} steps {loss['first_mean']:.4f}, last {loss['window']} "
                     f"{loss['last_mean']:.4f}, min {loss['min']:.4f}; per epoch "
                     + " ".join(f"{v:.4f}" for v in loss["per_epoch_mean"]))
    for v in report["validation"]:
        lines.append(f"epoch {v['epoch']}: validation mean IoU {v['mean_iou']:.4f} ({v['pairs']} pairs)")
    if report["export"]:
        lines.append(f"head weights: {report['export']}")
    return "\n".join(lines)


def _write_loss_log(out: Path, losses: Sequence[float]) -> None:
    (out / "loss.tsv").write_text("step\tloss\n" + "".join(f"{i + 1}\t{v:.6f}\n" for i, v in enumerate(losses)))


# --- loop -------------------------------------------------------------------------------------------

def train(cfg: TrainConfig, command: Optional[Sequence[str]] = None,
          log: Callable[[str], None] = print) -> TrainResult:
    """Train (or resume) the head as configured; see the module docstring."""
    dist_info = distributed_from_env()
    threads = torch.get_num_threads()
    started_group = False
    if dist_info.enabled and not dist.is_initialized():
        backend = "nccl" if cfg.device.startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend, rank=dist_info.rank, world_size=dist_info.world_size)
        started_group = True
    try:
        return _train(cfg, dist_info, list(command if command is not None else sys.argv), log)
    finally:
        torch.set_num_threads(threads)  # --threads applies to this run only
        if started_group:
            dist.destroy_process_group()


def _train(cfg: TrainConfig, dist_info: Distributed, command: List[str], log: Callable[[str], None]) -> TrainResult:
    device = _device(cfg.device, dist_info)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    elif device.type == "cpu":
        # Cores left to each process after its loader workers: oversubscribed OpenMP threads spin against
        # each other (2 threads + 1 worker on 2 cores ran 3x slower than 1 thread).
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // dist_info.world_size - cfg.workers))
    out = Path(cfg.out)
    data = discover(cfg.data_root, cfg.set_weights)
    train_data, val_clips = data.split(cfg.val_clips)
    sampler = PairSampler(train_data, cfg.pairs, cfg.seed, dist_info.rank)
    val_pairs = validation_pairs(val_clips, cfg.pairs, cfg.val_every)[dist_info.rank::dist_info.world_size]
    trainer = Trainer(cfg, device, dist_info)

    step = 0
    history = {"loss": [], "val": [], "wall_s": 0.0, "train_s": 0.0}
    if cfg.resume:
        path = latest_checkpoint(out)
        if path is None:
            raise CheckpointError(f"--resume: no checkpoint in {checkpoint_dir(out)}")
        step, history = _restore(trainer, load_checkpoint(path), path)
        if dist_info.main:
            log(f"resumed from {path} at step {step}")
    elif latest_checkpoint(out) is not None:
        raise ConfigError(f"{checkpoint_dir(out)} already holds checkpoints: pass --resume to continue that run "
                          f"or choose another --out")
    if dist_info.main:
        out.mkdir(parents=True, exist_ok=True)
        log(f"training on {len(train_data.clips)} clips and {len(train_data.images)} images "
            f"({', '.join(f'{k}: {v}' for k, v in sorted(train_data.sets.items()))}); validation: "
            f"{len(val_clips)} clips, {len(val_pairs) * dist_info.world_size} pairs; device {device}"
            + (f", {dist_info.world_size} processes" if dist_info.enabled else ""))

    def checkpoint(epoch: int) -> None:
        if dist_info.main:
            save_checkpoint(checkpoint_dir(out) / f"step_{step:08d}.pt", trainer, step, epoch, history)
            _write_loss_log(out, history["loss"])

    bar = tqdm(total=cfg.total_steps, initial=step, unit="step", file=sys.stderr,
               disable=not (cfg.progress and dist_info.main))
    last = min(cfg.total_steps, cfg.stop_after if cfg.stop_after is not None else cfg.total_steps)
    clock = time.perf_counter()

    def tick() -> None:  # wall time (steps, validation, checkpoints) accumulates across resumed runs
        nonlocal clock
        now = time.perf_counter()
        history["wall_s"] += now - clock
        clock = now

    try:
        for batch in _batches(sampler, cfg, step, last):  # one loader for the run: workers start once
            epoch = step // cfg.steps_per_epoch
            epoch_end = (epoch + 1) * cfg.steps_per_epoch
            began = time.perf_counter()
            loss = _all_mean(trainer.step(batch, step), dist_info, device)
            history["train_s"] += time.perf_counter() - began
            step += 1
            history["loss"].append(loss)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", lr=f"{trainer.lr_at(step - 1):.2e}")
            if step == epoch_end:
                total, count = trainer.validate(val_pairs)
                total = _all_mean(total, dist_info, device) * dist_info.world_size
                count = round(_all_mean(count, dist_info, device) * dist_info.world_size)
                if count:
                    history["val"].append({"epoch": epoch + 1, "step": step, "mean_iou": total / count,
                                           "pairs": count})
                    if dist_info.main:
                        line = f"epoch {epoch + 1}: validation mean IoU {total / count:.4f} ({count} pairs)"
                        if cfg.progress:
                            bar.write(line, file=sys.stderr)
                        else:
                            log(line)
                tick()
                checkpoint(epoch + 1)
            elif step % cfg.checkpoint_every == 0 or step == last:  # the last: stopped inside an epoch
                tick()
                checkpoint(epoch)
    finally:
        bar.close()

    export = None
    report = build_report(cfg, history, step, device, dist_info, None, command)
    if dist_info.main:
        if step >= cfg.total_steps:
            export = save_head(trainer.head, cfg.export or out / "d3s2_head.pt")
        report = build_report(cfg, history, step, device, dist_info, export, command)
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        log(format_report(report))
        if step < cfg.total_steps:
            log(f"stopped after step {step}; continue with --resume")
    return TrainResult(trainer.head, report, list(history["loss"]))
