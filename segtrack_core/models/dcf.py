"""GEM: the geometrically constrained model of D3S2, a discriminative correlation filter (DCF).

A multi-channel linear correlation filter learned in closed form in the Fourier domain (single-sample
ridge regression, MOSSE/DSST style) on dimensionality-reduced backbone features, updated online by a
running average of its numerator and denominator. Its response localises the target; the target
location channel handed to segmentation is derived from the response peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def cosine_window(height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Separable Hann window (H, W) that suppresses the boundary effects of circular correlation."""
    wy = torch.hann_window(height + 2, periodic=False, device=device)[1:-1]
    wx = torch.hann_window(width + 2, periodic=False, device=device)[1:-1]
    return wy[:, None] * wx[None, :]


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


class CorrelationFilter:
    """Closed-form multi-channel DCF on (C, H, W) features.

    Filter in the Fourier domain: H_c = conj(Y) X_c / (sum_k |X_k|^2 + lambda), with numerator and
    denominator averaged over time (learning rate ``lr``).
    """

    def __init__(self, regularization: float, learning_rate: float) -> None:
        self.regularization = regularization
        self.learning_rate = learning_rate
        self.window: torch.Tensor | None = None
        self._numerator: torch.Tensor | None = None
        self._denominator: torch.Tensor | None = None
        self.reference_peak = 1.0  # response peak on the training sample, to normalise later peaks

    def _terms(self, features: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xf = torch.fft.rfft2(features * self.window)
        yf = torch.fft.rfft2(label)
        numerator = torch.conj(yf)[None] * xf
        denominator = (xf.real ** 2 + xf.imag ** 2).sum(dim=0)
        return numerator, denominator

    def initialize(self, features: torch.Tensor, label: torch.Tensor) -> None:
        _, height, width = features.shape
        self.window = cosine_window(height, width, features.device)
        self._numerator, self._denominator = self._terms(features, label)
        self.reference_peak = max(find_peak(self.response(features)).value, 1e-6)

    def update(self, features: torch.Tensor, label: torch.Tensor) -> None:
        rate = self.learning_rate
        numerator, denominator = self._terms(features, label)
        self._numerator.mul_(1 - rate).add_(numerator, alpha=rate)
        self._denominator.mul_(1 - rate).add_(denominator, alpha=rate)

    def response(self, features: torch.Tensor) -> torch.Tensor:
        """Correlation response (H, W); its peak marks the target center."""
        zf = torch.fft.rfft2(features * self.window)
        hf = self._numerator / (self._denominator + self.regularization * self._denominator.mean())[None]
        return torch.fft.irfft2((torch.conj(hf) * zf).sum(dim=0), s=features.shape[-2:])


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
