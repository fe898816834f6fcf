"""GEM: D3S2's geometrically constrained model, a discriminatively optimised correlation filter.

As in D3S2 (which takes ATOM's online classifier): a small convolution filter on the reduced backbone
descriptor, trained online by conjugate gradient on a weighted, regularised least-squares loss against
Gaussian labels over a memory of training samples (the augmented first frame plus reliable frames).
Unlike a closed-form MOSSE filter, the filter has a small spatial support and is trained on the whole
search region, so everything else in the region (look-alikes included) is a negative. A frame with a
strong second peak (a distractor) is learned at once with a higher weight (hard-negative update).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn.grad import conv2d_weight

from ..config import setting


@dataclass(frozen=True)
class GemSettings:
    filter_size: int = setting(5, "spatial support of the filter in descriptor cells (odd)")
    regularization: float = setting(0.05, "weight of ||f||^2 against the per-cell mean squared error")
    learning_rate: float = setting(0.05, "weight of a new sample against the memory")
    hard_negative_rate: float = setting(0.15, "weight of a sample that had a distractor peak")
    init_weight_floor: float = setting(0.25, "share of the weight the first-frame samples always keep")
    memory: int = setting(12, "training samples kept (first-frame samples included)")
    init_iterations: int = setting(25, "conjugate-gradient iterations on the first frame")
    update_iterations: int = setting(2, "conjugate-gradient iterations per update")
    update_interval: int = setting(5, "reliable frames between updates (a hard negative updates at once)")


class DiscriminativeFilter:
    """Online-trained (D, k, k) filter; ``response`` correlates it with a (D, H, W) descriptor.

    Samples live in a preallocated memory: the first-frame samples in the leading slots, never replaced,
    and the learned ones in the others, each new sample replacing the oldest.
    """

    def __init__(self, settings: GemSettings) -> None:
        if settings.filter_size % 2 == 0 or settings.filter_size < 1:
            raise ValueError("filter_size must be odd and positive")
        self.settings = settings
        self.filter: torch.Tensor | None = None  # (1, D, k, k)
        self._samples: torch.Tensor | None = None  # (capacity, D, H, W)
        self._labels: torch.Tensor | None = None  # (capacity, 1, H, W)
        self._weights: torch.Tensor | None = None  # (capacity,), sums to 1, 0 in empty slots
        self._initial = 0  # leading slots holding first-frame samples
        self.sample_count = 0
        self._next_slot = 0  # learned slot the next sample goes to
        self._pending = 0  # samples added since the last optimisation

    def initialize(self, samples: torch.Tensor, labels: torch.Tensor) -> None:
        """Train from scratch on first-frame samples (N, D, H, W) with labels (N, H, W)."""
        n, channels = samples.shape[:2]
        capacity = max(self.settings.memory, n + 1)
        self._samples = samples.new_zeros((capacity, *samples.shape[1:]))
        self._samples[:n] = samples
        self._labels = labels.new_zeros((capacity, 1, *labels.shape[1:]))
        self._labels[:n, 0] = labels
        self._weights = samples.new_zeros(capacity)
        self._weights[:n] = 1.0 / n
        self._initial = self.sample_count = self._next_slot = n
        self._pending = 0
        k = self.settings.filter_size
        self.filter = samples.new_zeros((1, channels, k, k))
        self._optimize(self.settings.init_iterations)

    def update(self, sample: torch.Tensor, label: torch.Tensor, hard_negative: bool = False) -> None:
        """Add a (D, H, W) sample with its label; optimise every ``update_interval`` samples, or at once
        for a hard negative."""
        s = self.settings
        rate = s.hard_negative_rate if hard_negative else s.learning_rate
        slot = self._next_slot
        learned_slots = self._samples.shape[0] - self._initial
        self._next_slot = self._initial + (slot - self._initial + 1) % learned_slots
        self.sample_count = min(self.sample_count + 1, self._samples.shape[0])
        self._samples[slot] = sample
        self._labels[slot, 0] = label
        weights = self._weights.mul_(1.0 - rate)
        weights[slot] = rate
        initial = float(weights[: self._initial].sum())
        if initial < s.init_weight_floor:  # the first frame is the only sure annotation: never forget it
            weights[: self._initial] *= s.init_weight_floor / max(initial, 1e-12)
        weights /= weights.sum()
        self._pending += 1
        if hard_negative or self._pending >= s.update_interval:
            self._optimize(s.update_iterations)

    def response(self, features: torch.Tensor) -> torch.Tensor:
        """Classifier score (H, W) of a (D, H, W) descriptor of any size; about 1 on the target."""
        pad = self.settings.filter_size // 2
        return F.conv2d(features[None], self.filter, padding=pad)[0, 0]

    # The loss: sum_i w_i mean_cells (f * x_i - y_i)^2 + reg ||f||^2, minimised by conjugate gradient
    # on its normal equations (A f = b), warm-started from the current filter.
    def _optimize(self, iterations: int) -> None:
        self._pending = 0
        if iterations <= 0:
            return
        pad, reg = self.settings.filter_size // 2, self.settings.regularization
        samples, labels = self._samples[: self.sample_count], self._labels[: self.sample_count]
        scale = (self._weights[: self.sample_count] / (samples.shape[-1] * samples.shape[-2]))[:, None, None, None]

        def normal_operator(v: torch.Tensor) -> torch.Tensor:
            return conv2d_weight(samples, v.shape, F.conv2d(samples, v, padding=pad) * scale, padding=pad) + reg * v

        f = self.filter
        # Residual of the normal equations, b - A f, in one pass over the samples.
        error = (labels - F.conv2d(samples, f, padding=pad)) * scale
        r = conv2d_weight(samples, f.shape, error, padding=pad) - reg * f
        p = r.clone()
        rs = float((r * r).sum())
        for _ in range(iterations):
            if rs < 1e-20:
                break
            ap = normal_operator(p)
            alpha = rs / max(float((p * ap).sum()), 1e-20)
            f = f + alpha * p
            r = r - alpha * ap
            rs_new = float((r * r).sum())
            p = r + (rs_new / rs) * p
            rs = rs_new
        self.filter = f


def second_peak(response: torch.Tensor, peak: tuple[float, float], exclusion: tuple[float, float]) -> float:
    """Highest response outside an ellipse of half-axes ``exclusion`` (cells) around ``peak``: the best
    competing location (a distractor when close to the peak's value)."""
    height, width = response.shape
    ys = torch.arange(height, device=response.device, dtype=torch.float32)[:, None]
    xs = torch.arange(width, device=response.device, dtype=torch.float32)[None, :]
    inside = ((xs - peak[0]) / max(exclusion[0], 0.5)) ** 2 + ((ys - peak[1]) / max(exclusion[1], 0.5)) ** 2 <= 1
    rest = response.masked_fill(inside, float("-inf"))
    value = float(rest.max())
    return value if value != float("-inf") else 0.0
