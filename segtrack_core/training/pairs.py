"""Training pairs for the D3S2 segmentation head (paper sec. 5.1).

A pair is a reference crop with its mask (the first frame the tracker learns from) and a test crop with
its ground-truth mask and the target location channel. Both crops use the tracker's geometry
(``SearchRegion``: a square of ``search_scale`` x sqrt(target box area) around the target resampled to
``crop`` pixels, border replicated).

- video pairs: two frames at most ``max_gap`` apart from one clip;
- static pairs: an image with one instance mask and an affine-perturbed copy (shift, scale, rotation,
  flip) of it.

The test region's centre and the location channel's peak are the ground-truth centre moved by independent
uniform offsets of up to ``center_jitter`` x the target size (the tracker centres the region on a motion
prediction and the location channel on the GEM's peak); a share of the references give the filled box of
their mask instead of the mask (box initialisation). Every pair is a pure function of
(seed, rank, step, index), so a resumed run draws exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..config import setting
from ..errors import ConfigError
from ..io import DataError, read_image
from ..models.dcf import location_channel
from ..models.features import DESCRIPTOR_STRIDE, SearchRegion
from .datasets import Clip, StillImage, TrainingData


@dataclass(frozen=True)
class PairSettings:
    crop: int = setting(256, "side of the resampled search region, pixels (multiple of 16)")
    search_scale: float = setting(4.0, "search region side / sqrt(target box area), as the tracker")
    video_share: float = setting(0.8, "share of pairs from video clips (the rest: perturbed still images)")
    max_gap: int = setting(50, "largest frame distance between a video pair's frames")
    box_share: float = setting(0.3, "share of references whose memory comes from the mask's filled box")
    center_jitter: float = setting(0.125, "largest offset of the test region centre and of the location "
                                          "peak from the true centre, fraction of the target size")
    scale_jitter: float = setting(0.15, "largest |log| factor on the test region side")
    reference_jitter: float = setting(0.5, "the reference region's jitter as a fraction of the test's")
    min_target: float = setting(12.0, "smallest reference target, pixels (sqrt of its mask area)")
    location_sigma: float = setting(0.5, "location channel std / target size, as the tracker")
    shift: float = setting(0.25, "still pairs: largest shift, fraction of the target size")
    scale: float = setting(0.25, "still pairs: largest |log| scale change")
    rotation: float = setting(10.0, "still pairs: largest rotation, degrees")
    flip: float = setting(0.5, "still pairs: probability of a horizontal flip")
    brightness: float = setting(0.2, "largest |log| contrast factor of the test crop (offset: 100x it, grey "
                                     "levels)")

    def __post_init__(self) -> None:
        if self.crop % 16 or self.crop < 32:
            raise ConfigError(f"crop must be a multiple of 16 and >= 32, got {self.crop}")
        if self.search_scale < 1.5:
            raise ConfigError(f"search_scale must be >= 1.5, got {self.search_scale}")
        for name in ("video_share", "box_share", "flip"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.max_gap < 1:
            raise ConfigError("max_gap must be >= 1")

    @property
    def grid(self) -> int:
        return self.crop // DESCRIPTOR_STRIDE


@dataclass
class Pair:
    reference: np.ndarray  # (S, S, 3) uint8 BGR crop
    coverage: np.ndarray  # (S/8, S/8) float32: share of each cell the reference mask (or box) covers
    test: np.ndarray  # (S, S, 3) uint8 BGR crop
    mask: np.ndarray  # (S, S) float32 0/1: the test crop's ground truth
    location: np.ndarray  # (S/8, S/8) float32 location channel
    source: str  # "<set>/<item>:<reference>-><test>" (video) or "<set>/<image>#<instance>" (still)
    clip: Optional[str] = None  # the clip a video pair comes from


@dataclass
class Batch:
    reference: np.ndarray  # (N, S, S, 3)
    coverage: np.ndarray  # (N, g, g)
    test: np.ndarray
    mask: np.ndarray  # (N, S, S)
    location: np.ndarray
    sources: List[str]


def collate(pairs: Sequence[Pair]) -> Batch:
    return Batch(np.stack([p.reference for p in pairs]), np.stack([p.coverage for p in pairs]),
                 np.stack([p.test for p in pairs]), np.stack([p.mask for p in pairs]),
                 np.stack([p.location for p in pairs]), [p.source for p in pairs])


@dataclass(frozen=True)
class Target:
    cx: float
    cy: float
    w: float
    h: float
    area: int

    @property
    def size(self) -> float:
        return math.sqrt(self.w * self.h)


def mask_target(mask: np.ndarray) -> Optional[Target]:
    """Box centre and size (pixel-edge coordinates) and area of a mask; None if empty."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    return Target((x0 + x1) / 2, (y0 + y1) / 2, float(x1 - x0), float(y1 - y0), int(xs.size))


def filled_box(mask: np.ndarray) -> np.ndarray:
    out = np.zeros_like(mask)
    ys, xs = np.nonzero(mask)
    out[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = 1
    return out


def _read_mask(path) -> np.ndarray:
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise DataError(f"cannot decode mask image {path}")
    return (mask > 127).astype(np.uint8)


def _read_image(path) -> np.ndarray:
    image = read_image(path)
    if image is None:
        raise DataError(f"cannot decode image {path}")
    return image


def _warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _affine3(matrix: np.ndarray) -> np.ndarray:
    return np.vstack([matrix, [0.0, 0.0, 1.0]])


def crop_pair_part(image: np.ndarray, mask: np.ndarray, region: SearchRegion,
                   pre: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """(crop, float mask crop) of ``image`` and ``mask`` through ``region``, after the image-space affine
    ``pre`` (2x3) if given."""
    matrix = region.image_to_crop_matrix()
    if pre is not None:
        matrix = (_affine3(matrix) @ _affine3(pre))[:2]
    return _warp(image, matrix, region.size), _warp(mask.astype(np.float32), matrix, region.size)


def coverage_cells(mask_crop: np.ndarray, grid: int) -> np.ndarray:
    """Share of each stride-8 cell covered (INTER_AREA), as the tracker's ``_coverage``."""
    return cv2.resize(mask_crop, (grid, grid), interpolation=cv2.INTER_AREA).astype(np.float32)


def test_location(region: SearchRegion, peak: Tuple[float, float], target: Target, sigma: float) -> np.ndarray:
    """The tracker's location channel for a peak at image point ``peak`` and a target of ``target``'s size."""
    grid = region.size // DESCRIPTOR_STRIDE
    cell = region.image_to_cell(peak[0], peak[1], DESCRIPTOR_STRIDE)
    size_cells = (target.w * region.scale / DESCRIPTOR_STRIDE, target.h * region.scale / DESCRIPTOR_STRIDE)
    return location_channel(grid, grid, cell, size_cells, sigma).numpy().astype(np.float32)


class PairSampler:
    """Draws training pairs from ``data``; ``pair(step, index)`` depends only on (seed, rank, step, index)."""

    MAX_TRIES = 100

    def __init__(self, data: TrainingData, settings: PairSettings, seed: int, rank: int = 0) -> None:
        self.data = data
        self.settings = settings
        self.seed = seed
        self.rank = rank
        self._clips = [c for c in data.clips if len(c) >= 2]
        clip_weights = np.array([data.weight(c.set_name) * len(c) for c in self._clips], dtype=float)
        image_weights = np.array([data.weight(i.set_name) for i in data.images], dtype=float)
        self._clip_p = clip_weights / clip_weights.sum() if clip_weights.sum() > 0 else None
        self._image_p = image_weights / image_weights.sum() if image_weights.sum() > 0 else None
        if self._clip_p is None and self._image_p is None:
            raise DataError("no training material with a positive sampling weight (video clips of 2+ frames or "
                            "images with instance masks)")

    def rng(self, step: int, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.rank, step, index])

    def pair(self, step: int, index: int) -> Pair:
        rng = self.rng(step, index)
        for _ in range(self.MAX_TRIES):
            video = self._image_p is None or (self._clip_p is not None and rng.random() < self.settings.video_share)
            pair = self._video_pair(rng) if video else self._still_pair(rng)
            if pair is not None:
                return pair
        raise DataError(f"no usable training pair in {self.MAX_TRIES} draws: targets smaller than "
                        f"{self.settings.min_target} px or empty masks everywhere?")

    def batch(self, step: int, size: int) -> Batch:
        return collate([self.pair(step, i) for i in range(size)])

    # --- drawing ------------------------------------------------------------------------------------
    def _jittered_region(self, rng: np.random.Generator, target: Target, factor: float) -> SearchRegion:
        s = self.settings
        jitter = s.center_jitter * factor
        cx = target.cx + rng.uniform(-jitter, jitter) * target.w
        cy = target.cy + rng.uniform(-jitter, jitter) * target.h
        side = s.search_scale * target.size * math.exp(rng.uniform(-1, 1) * s.scale_jitter * factor)
        return SearchRegion(cx, cy, side, s.crop)

    def _reference(self, rng: np.random.Generator, image: np.ndarray, mask: np.ndarray,
                   target: Target) -> Tuple[np.ndarray, np.ndarray]:
        s = self.settings
        region = self._jittered_region(rng, target, s.reference_jitter)
        memory_mask = filled_box(mask) if rng.random() < s.box_share else mask
        crop, mask_crop = crop_pair_part(image, memory_mask, region)
        return crop, coverage_cells(mask_crop, s.grid)

    def _test(self, rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, target: Target,
              pre: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = self.settings
        region = self._jittered_region(rng, target, 1.0)
        peak = (target.cx + rng.uniform(-s.center_jitter, s.center_jitter) * target.w,
                target.cy + rng.uniform(-s.center_jitter, s.center_jitter) * target.h)
        crop, mask_crop = crop_pair_part(image, mask, region, pre)
        contrast = math.exp(rng.uniform(-1, 1) * s.brightness)
        offset = rng.uniform(-1, 1) * s.brightness * 100
        crop = np.clip(crop.astype(np.float32) * contrast + offset, 0, 255).astype(np.uint8)
        return crop, (mask_crop >= 0.5).astype(np.float32), test_location(region, peak, target, s.location_sigma)

    def _video_pair(self, rng: np.random.Generator) -> Optional[Pair]:
        s = self.settings
        clip: Clip = self._clips[rng.choice(len(self._clips), p=self._clip_p)]
        r = int(rng.integers(len(clip)))
        lo, hi = max(0, r - s.max_gap), min(len(clip) - 1, r + s.max_gap)
        t = int(rng.integers(lo, hi))  # in [lo, hi): shifted past r below, so t != r
        t = t + 1 if t >= r else t
        ref_mask = _read_mask(clip.masks[r])
        ref_target = mask_target(ref_mask)
        if ref_target is None or math.sqrt(ref_target.area) < s.min_target:
            return None
        test_mask = _read_mask(clip.masks[t])
        test_target = mask_target(test_mask)
        # The tracker segments where the GEM found the target: test frames without it teach nothing here.
        if test_target is None or math.sqrt(test_target.area) < s.min_target / 2:
            return None
        reference, coverage = self._reference(rng, _read_image(clip.frames[r]), ref_mask, ref_target)
        test, mask, location = self._test(rng, _read_image(clip.frames[t]), test_mask, test_target)
        return Pair(reference, coverage, test, mask, location, f"{clip.set_name}/{clip.name}:{r}->{t}", clip.name)

    def _still_pair(self, rng: np.random.Generator) -> Optional[Pair]:
        s = self.settings
        item: StillImage = self.data.images[rng.choice(len(self.data.images), p=self._image_p)]
        k = int(rng.integers(len(item.masks)))
        mask = _read_mask(item.masks[k])
        target = mask_target(mask)
        if target is None or math.sqrt(target.area) < s.min_target:
            return None
        height, width = mask.shape
        # A perturbed copy replicates the image border: an instance cut by it would be smeared across the crop.
        if target.cx - target.w / 2 <= 0 or target.cy - target.h / 2 <= 0 or \
                target.cx + target.w / 2 >= width or target.cy + target.h / 2 >= height:
            return None
        image = _read_image(item.image)
        reference, coverage = self._reference(rng, image, mask, target)
        pre = self._perturbation(rng, target)
        moved = cv2.warpAffine(mask, pre, (width, height), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        moved_target = mask_target(moved)
        if moved_target is None or math.sqrt(moved_target.area) < s.min_target / 2:
            return None
        test, test_mask, location = self._test(rng, image, mask, moved_target, pre)
        return Pair(reference, coverage, test, test_mask, location, f"{item.set_name}/{item.name}#{k}")

    def _perturbation(self, rng: np.random.Generator, target: Target) -> np.ndarray:
        """2x3 image-space affine about the target centre: flip, rotation, scale, then shift."""
        s = self.settings
        angle = math.radians(rng.uniform(-s.rotation, s.rotation))
        scale = math.exp(rng.uniform(-s.scale, s.scale))
        flip = -1.0 if rng.random() < s.flip else 1.0
        shift = (rng.uniform(-s.shift, s.shift) * target.w, rng.uniform(-s.shift, s.shift) * target.h)
        cos, sin = scale * math.cos(angle), scale * math.sin(angle)
        linear = np.array([[cos * flip, -sin], [sin * flip, cos]])
        # Pixel indices have centres at integers: the continuous centre c is the index c - 0.5.
        center = np.array([target.cx - 0.5, target.cy - 0.5])
        offset = center + np.array(shift) - linear @ center
        return np.hstack([linear, offset[:, None]])


def validation_pairs(clips: Sequence[Clip], settings: PairSettings, every: int = 5,
                     limit_per_clip: Optional[int] = None) -> List[Pair]:
    """Deterministic pairs of each clip: its first frame with a usable target as reference (its mask),
    every ``every``-th later frame with the target as test; region and location at the true centre."""
    s = settings
    pairs = []
    for clip in clips:
        masks = [_read_mask(p) for p in clip.masks]
        targets = [mask_target(m) for m in masks]
        first = next((i for i, t in enumerate(targets) if t is not None and math.sqrt(t.area) >= s.min_target), None)
        if first is None:
            continue
        ref_target = targets[first]
        region = SearchRegion(ref_target.cx, ref_target.cy, s.search_scale * ref_target.size, s.crop)
        reference, ref_mask = crop_pair_part(_read_image(clip.frames[first]), masks[first], region)
        coverage = coverage_cells(ref_mask, s.grid)
        tests = [t for t in range(first + every, len(clip), every) if targets[t] is not None]
        for t in tests[:limit_per_clip]:
            target = targets[t]
            region = SearchRegion(target.cx, target.cy, s.search_scale * target.size, s.crop)
            test, mask = crop_pair_part(_read_image(clip.frames[t]), masks[t], region)
            location = test_location(region, (target.cx, target.cy), target, s.location_sigma)
            pairs.append(Pair(reference, coverage, test, (mask >= 0.5).astype(np.float32), location,
                              f"{clip.set_name}/{clip.name}:{first}->{t}", clip.name))
    return pairs
