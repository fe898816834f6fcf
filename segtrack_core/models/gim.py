"""GIM: the geometrically invariant model of D3S2.

Foreground and background feature memories taken from pixels with known labels. Every search-region
feature is compared (cosine similarity) with all memory entries; the mean of the top-K similarities
gives the foreground-similarity channel F and the background-similarity channel B. The tracker fuses
them with the GEM's location channel into the foreground probability (models.refine.fuse).
"""

from __future__ import annotations

import torch


class FeatureMemory:
    """Fixed-capacity memory of unit-norm feature vectors: a permanent part from the first frame plus a
    FIFO of updates, so the initial appearance is never forgotten (as in D3S2)."""

    def __init__(self, capacity: int, permanent_fraction: float = 0.5) -> None:
        self.capacity = capacity
        self.permanent_capacity = max(1, int(capacity * permanent_fraction))
        self.permanent: torch.Tensor | None = None
        self.recent: torch.Tensor | None = None

    @staticmethod
    def _subsample(vectors: torch.Tensor, count: int) -> torch.Tensor:
        if vectors.shape[0] <= count:
            return vectors
        index = torch.linspace(0, vectors.shape[0] - 1, count, device=vectors.device).round().long()
        return vectors[index]

    def reset(self, vectors: torch.Tensor) -> None:
        self.permanent = self._subsample(vectors, self.permanent_capacity)
        self.recent = vectors[:0]

    def add(self, vectors: torch.Tensor) -> None:
        room = self.capacity - self.permanent.shape[0]
        if room <= 0 or vectors.shape[0] == 0:
            return
        merged = torch.cat([self.recent, self._subsample(vectors, room)])
        self.recent = merged[-room:]

    @property
    def vectors(self) -> torch.Tensor:
        return torch.cat([self.permanent, self.recent]) if self.recent.shape[0] else self.permanent


def topk_similarity(features: torch.Tensor, memory: torch.Tensor, k: int) -> torch.Tensor:
    """Mean of the top-k cosine similarities of each (C, H, W) feature with memory (N, C) -> (H, W)."""
    channels, height, width = features.shape
    queries = features.reshape(channels, -1).t()  # (HW, C), already unit norm
    similarity = queries @ memory.t()  # (HW, N)
    k = min(k, memory.shape[0])
    return similarity.topk(k, dim=1).values.mean(dim=1).reshape(height, width)


class GeometricallyInvariantModel:
    """Foreground/background memories and the F, B, P channels they produce."""

    def __init__(self, fg_capacity: int, bg_capacity: int, top_k: int) -> None:
        self.foreground = FeatureMemory(fg_capacity)
        self.background = FeatureMemory(bg_capacity)
        self.top_k = top_k

    @staticmethod
    def gather(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Feature vectors (N, C) at the cells where ``mask`` (H, W bool) is set."""
        return features.flatten(1)[:, mask.flatten()].t()

    def initialize(self, features: torch.Tensor, fg_mask: torch.Tensor, bg_mask: torch.Tensor) -> None:
        self.foreground.reset(self.gather(features, fg_mask))
        self.background.reset(self.gather(features, bg_mask))

    def update(self, features: torch.Tensor, fg_mask: torch.Tensor, bg_mask: torch.Tensor) -> None:
        self.foreground.add(self.gather(features, fg_mask))
        self.background.add(self.gather(features, bg_mask))

    def channels(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(F, B): foreground and background similarity, each (H, W); the fusion turns them into a
        probability with the GEM location channel (models.refine.fuse)."""
        fg = topk_similarity(features, self.foreground.vectors, self.top_k)
        bg = topk_similarity(features, self.background.vectors, self.top_k)
        return fg, bg
