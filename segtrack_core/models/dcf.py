"""Response-map helpers shared by the GEM and the trackers: Gaussian labels, sub-cell peaks and the
target location channel that D3S2 derives from the GEM's peak."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def gaussian_label(height: int, width: int, center: tuple[float, float], sigma: tuple[float, float],
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """Gaussian (H, W) peaked at ``center`` = (x, y) in feature cells, std ``sigma`` = (sx, sy)."""
    ys = torch.arange(height, dtype=torch.float32, device=device)[:, None]
    xs = torch.arange(width, dtype=torch.float32, device=device)[None, :]
    return torch.exp(-0.5 * (((xs - center[0]) / sigma[0]) ** 2 + ((ys - center[1]) / sigma[1]) ** 2))


@dataclass
class Peak:
    x: float  # sub-cell position in feature cells
    y: float
    value: float


def find_peak(response: torch.Tensor) -> Peak:
    """Maximum of a 2-D response with parabolic sub-cell refinement along each axis."""
    height, width = response.shape
    index = int(torch.argmax(response))
    py, px = divmod(index, width)
    value = float(response[py, px])

    def offset(prev: float, center: float, nxt: float) -> float:
        denom = prev - 2 * center + nxt
        return 0.0 if abs(denom) < 1e-12 else float(max(-0.5, min(0.5, 0.5 * (prev - nxt) / denom)))

    dx = offset(float(response[py, px - 1]), value, float(response[py, px + 1])) if 0 < px < width - 1 else 0.0
    dy = offset(float(response[py - 1, px]), value, float(response[py + 1, px])) if 0 < py < height - 1 else 0.0
    return Peak(px + dx, py + dy, value)


def location_channel(height: int, width: int, peak: tuple[float, float], size: tuple[float, float],
                     sigma_factor: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """Target location channel: a soft distance transform from the DCF peak, scaled by target size.

    1 at the peak, decaying with the distance normalised by the target's half extent along each axis.
    """
    sx = max(sigma_factor * size[0], 0.5)
    sy = max(sigma_factor * size[1], 0.5)
    return gaussian_label(height, width, peak, (sx, sy), device)


def label_sigma(size_cells: tuple[float, float], factor: float) -> tuple[float, float]:
    """Std of the DCF's Gaussian label: a fraction of the target's geometric-mean size, in cells."""
    sigma = max(factor * math.sqrt(size_cells[0] * size_cells[1]), 0.5)
    return (sigma, sigma)
