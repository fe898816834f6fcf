"""Torch device selection."""

from __future__ import annotations

import torch

from .errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """Map 'cpu', 'cuda', 'cuda:N' or 'auto' (CUDA if available) to a torch.device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"invalid device {name!r}: use cpu, cuda, cuda:N or auto") from exc
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device {name!r}: use cpu, cuda, cuda:N or auto")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available")
    return device
