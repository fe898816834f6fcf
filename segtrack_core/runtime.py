"""Where and how a backend computes: device, precision, CPU threads. One config section shared by every
backend that runs torch, and the one place that turns it into a torch device."""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from .config import setting
from .errors import ConfigError

DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:[0-9]+)?")


@dataclass
class RuntimeConfig:
    device: str = setting("auto", "torch device: auto (CUDA if available), cpu, cuda or cuda:N")
    half: bool = setting(False, "fp16 network (CUDA only)")
    threads: int = setting(0, "torch CPU threads; 0 keeps torch's default")

    def __post_init__(self) -> None:
        if not DEVICE_PATTERN.fullmatch(self.device):
            raise ConfigError(f"invalid device {self.device!r}: use auto, cpu, cuda or cuda:N")
        if self.threads < 0:
            raise ConfigError(f"threads must be >= 0, got {self.threads}")


def resolve_device(name: str) -> torch.device:
    """Map 'cpu', 'cuda', 'cuda:N' or 'auto' (CUDA if available), as RuntimeConfig checked it, to a
    torch.device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available() and name != "cpu":
        raise ConfigError(f"device {name!r} requested but CUDA is not available")
    return torch.device(name)


def start_runtime(runtime: RuntimeConfig) -> torch.device:
    """The torch device for ``runtime`` after checking it can run here; applies the thread cap."""
    device = resolve_device(runtime.device)
    if runtime.half and device.type != "cuda":
        raise ConfigError("half precision needs a CUDA device")
    if runtime.threads > 0:
        torch.set_num_threads(runtime.threads)
    return device
