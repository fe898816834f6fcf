"""Fusion of the GIM and GEM channels and refinement of the coarse mask to image resolution.

The coarse foreground probability (stride 8) is resampled into an image window around the target and
refined with an edge-preserving guided filter whose guide is the image itself, so the mask follows
object boundaries at full resolution.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch


def fuse(fg_similarity: torch.Tensor, bg_similarity: torch.Tensor, location: torch.Tensor,
         temperature: float, location_weight: float, bias: float, core: torch.Tensor | None = None,
         core_weight: float = 0.0) -> torch.Tensor:
    """Foreground probability (H, W) from GIM similarities and the GEM location channel (logit sum); a
    ``core`` channel adds ``core_weight`` of evidence for the foreground only, where it is above 0.5."""
    logit = (fg_similarity - bg_similarity) / temperature + location_weight * (2 * location - 1) + bias
    if core is not None:
        logit = logit + core_weight * (2 * core - 1).clamp(min=0)
    return torch.sigmoid(logit)


def guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter with a colour guide (HxWx3 float32 in [0, 1]), source HxW float32."""
    size = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    mean_i = box(guide)  # HxWx3
    mean_p = box(source)
    # Covariance of the guide (symmetric 3x3 per pixel) and guide-source cross covariance.
    products = np.concatenate([guide[..., [0, 0, 0, 1, 1, 2]] * guide[..., [0, 1, 2, 1, 2, 2]],
                               guide * source[..., None]], axis=2)
    means = box(products)
    var = means[..., :6] - mean_i[..., [0, 0, 0, 1, 1, 2]] * mean_i[..., [0, 1, 2, 1, 2, 2]]
    cov_ip = means[..., 6:] - mean_i * mean_p[..., None]
    # Per-pixel solve of (Sigma + eps I) a = cov_ip with the closed-form inverse of a symmetric 3x3.
    sxx, sxy, sxz, syy, syz, szz = (var[..., i] for i in range(6))
    sxx, syy, szz = sxx + eps, syy + eps, szz + eps
    ixx, ixy, ixz = syy * szz - syz * syz, sxz * syz - sxy * szz, sxy * syz - sxz * syy
    iyy, iyz, izz = sxx * szz - sxz * sxz, sxy * sxz - sxx * syz, sxx * syy - sxy * sxy
    det = sxx * ixx + sxy * ixy + sxz * ixz
    cx, cy, cz = cov_ip[..., 0], cov_ip[..., 1], cov_ip[..., 2]
    a = np.stack([ixx * cx + ixy * cy + ixz * cz, ixy * cx + iyy * cy + iyz * cz,
                  ixz * cx + iyz * cy + izz * cz], axis=2) / det[..., None]
    b = mean_p - (a * mean_i).sum(axis=2)
    return (box(a) * guide).sum(axis=2) + box(b)


def keep_target_components(mask: np.ndarray, anchor: np.ndarray, min_fraction: float = 0.1) -> np.ndarray:
    """Connected components of ``mask`` that overlap ``anchor`` (both HxW), less specks smaller than
    ``min_fraction`` of the largest such component (they would stretch the boxes)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return mask.astype(bool)
    hits = np.unique(labels[(anchor != 0) & (labels > 0)])
    if hits.size == 0:
        return np.zeros(mask.shape, bool)
    areas = stats[hits, cv2.CC_STAT_AREA]
    keep = np.zeros(count, bool)
    keep[hits[areas >= min_fraction * areas.max()]] = True
    return keep[labels]


class ColorModel:
    """Foreground/background colour histograms (quantised BGR) giving a per-pixel foreground posterior.

    Learned from the first mask and updated with a running average from reliable frames; it sharpens
    the coarse, feature-resolution probability to object boundaries.
    """

    def __init__(self, bins_per_channel: int, learning_rate: float) -> None:
        self.shift = 8 - int(math.log2(bins_per_channel))
        self.bins = bins_per_channel
        self.learning_rate = learning_rate
        self.foreground: np.ndarray | None = None
        self.background: np.ndarray | None = None

    def _index(self, image: np.ndarray) -> np.ndarray:
        q = (image >> self.shift).astype(np.int32)
        return (q[..., 0] * self.bins + q[..., 1]) * self.bins + q[..., 2]

    def _histograms(self, image: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        index = self._index(image)
        size = self.bins ** 3
        hist_fg = np.bincount(index[fg], minlength=size).astype(np.float32)
        hist_bg = np.bincount(index[bg], minlength=size).astype(np.float32)
        return hist_fg / max(hist_fg.sum(), 1.0), hist_bg / max(hist_bg.sum(), 1.0)

    def initialize(self, image: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> None:
        self.foreground, self.background = self._histograms(image, fg, bg)

    def update(self, image: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> None:
        hist_fg, hist_bg = self._histograms(image, fg, bg)
        rate = self.learning_rate
        self.foreground = (1 - rate) * self.foreground + rate * hist_fg
        self.background = (1 - rate) * self.background + rate * hist_bg

    def posterior(self, image: np.ndarray, prior: float = 0.5) -> np.ndarray:
        """P(foreground | colour) per pixel, HxW float32, with a small floor so unseen colours stay 0.5."""
        index = self._index(image)
        fg = self.foreground[index] * prior + 1e-6
        bg = self.background[index] * (1 - prior) + 1e-6
        return (fg / (fg + bg)).astype(np.float32)


def logit(p: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    p = np.clip(p, eps, 1 - eps)
    return np.log(p / (1 - p))

