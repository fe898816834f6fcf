"""D3S2's segmentation step behind one interface, ``MaskHead``: the GIM memories, the first mask of a box
initialisation and the mask of each frame around the GEM peak.

- ``HandMadeMaskHead`` (``segmentation.head: handmade``): GIM channels of the target's PCA descriptor fused
  with the location channel, sharpened by a colour posterior, dense-flow evidence and a guided filter;
  box initialisation by GrabCut and segmentation passes. Nothing trained offline.
- ``LearnedMaskHead`` (``segmentation.head: learned``): the offline-trained GIM feature adjustment and
  refinement pathway (nets.d3s2_head) on the crop the tracker searches, as it was trained; box
  initialisation by memories from the filled box, as a share of its training pairs had.

A head holds no target state: memories and colour histograms live in the target's ``D3S2State``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Protocol

import cv2
import numpy as np
import torch

from ...models.dcf import location_channel
from ...models.features import DESCRIPTOR_STRIDE, SearchRegion
from ...models.gim import GeometricallyInvariantModel
from ...models.motion import motion_evidence
from ...models.refine import ColorModel, fuse, guided_filter, keep_target_components, logit
from ...nets.d3s2_head import FEATURE_STRIDES, load_head
from ...stopwatch import Stopwatch
from ...types import Box
from .box_init import bootstrap_memories, box_init_mask, initial_cells
from .config import D3S2Config
from .state import D3S2State

SHIPPED_HEAD = Path(__file__).resolve().parents[2] / "weights" / "d3s2_head.pt"
SHIPPED_HEAD_ORIGIN = ("trained by segtrack (`segtrack train`, docs/training.md) on DAVIS-2016/2017 train clips "
                       "(CC BY-NC 4.0: non-commercial use only), COCO subsets (CC BY 4.0 annotations, Flickr image "
                       "licences) and a people-photo set; sha256 96556a1b8a2a820a86d13f5493f0fa91734fbd87ddd9a8"
                       "51fe32d484f151b7d9")
# Logit of the crop's outside: the head says nothing there, so it is background.
OUTSIDE_LOGIT = -20.0
# A location channel of this sigma (per target size) is 0.5 on the ellipse inscribed in the target's box.
INSCRIBED_SIGMA = 0.5 / math.sqrt(2.0 * math.log(2.0))


class View(NamedTuple):
    """One search region seen through the backbone."""
    region: SearchRegion
    features: dict  # {stride: (1, C, H/s, W/s)} backbone taps
    descriptor: torch.Tensor  # (D, H/8, W/8) the target's PCA descriptor (the GEM's input)
    memory_features: torch.Tensor  # (D', H/8, W/8) what the GIM memories hold and compare


class Motion(NamedTuple):
    """This frame's motion; the last frame and the target's mask on it are in the state."""
    gray: np.ndarray
    displacement: tuple[float, float]  # the target's, since the last frame (median flow)


class Segmentation(NamedTuple):
    mask: np.ndarray  # full-resolution bool
    window: tuple[int, int, int, int]  # (x0, y0, x1, y1): the mask is empty outside it
    mean_probability: float  # mean foreground probability over the mask
    bg_similarity: torch.Tensor  # GIM background-similarity channel of the search region


@dataclass(frozen=True)
class Placement:
    """Where a frame is segmented: the GEM peak (a cell of the view's region) and the target's size."""
    peak_cell: tuple[float, float]
    size: tuple[float, float]  # (w, h) image pixels

    def size_cells(self, region: SearchRegion) -> tuple[float, float]:
        return (self.size[0] * region.scale / DESCRIPTOR_STRIDE, self.size[1] * region.scale / DESCRIPTOR_STRIDE)

    def location(self, region: SearchRegion, grid: tuple[int, int], sigma: float, device) -> torch.Tensor:
        return location_channel(grid[0], grid[1], self.peak_cell, self.size_cells(region), sigma, device)

    def window(self, region: SearchRegion, shape: tuple[int, int]) -> tuple[int, int, int, int]:
        return target_window(region.cell_to_image(*self.peak_cell, DESCRIPTOR_STRIDE), self.size, shape)

    def anchor(self, region: SearchRegion, window: tuple[int, int, int, int]) -> np.ndarray:
        """The tracked box inside ``window`` (bool): a mask's components must touch it."""
        (px, py), (w, h) = region.cell_to_image(*self.peak_cell, DESCRIPTOR_STRIDE), self.size
        x0, y0, x1, y1 = window
        anchor = np.zeros((y1 - y0, x1 - x0), bool)
        ax0, ay0 = int(max(0, px - 0.5 * w - x0)), int(max(0, py - 0.5 * h - y0))
        ax1, ay1 = int(max(0, px + 0.5 * w - x0 + 1)), int(max(0, py + 0.5 * h - y0 + 1))
        anchor[ay0:ay1, ax0:ax1] = True
        return anchor


def target_window(center: tuple[float, float], size: tuple[float, float],
                  shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Image window (x0, y0, x1, y1) of twice the target size around ``center``, clipped."""
    (cx, cy), (w, h) = center, size
    x0, y0 = int(max(0, math.floor(cx - w))), int(max(0, math.floor(cy - h)))
    x1, y1 = int(min(shape[1], math.ceil(cx + w))), int(min(shape[0], math.ceil(cy + h)))
    return x0, y0, x1, y1


def cell_coverage(mask: np.ndarray, region: SearchRegion, grid: tuple[int, int], device) -> torch.Tensor:
    """Fraction of each descriptor cell of ``region`` covered by the full-resolution ``mask``."""
    crop = region.crop(mask.astype(np.float32))
    return torch.from_numpy(cv2.resize(crop, (grid[1], grid[0]), interpolation=cv2.INTER_AREA)).to(device)


# Looks at another region of the first frame (box initialisation): region -> View.
Look = Callable[[SearchRegion], View]


class MaskHead(Protocol):
    strides: tuple[int, ...]  # the backbone taps the head reads

    def memory_features(self, features: dict, descriptor: torch.Tensor) -> torch.Tensor:
        """What the GIM memories hold for a view (the descriptor, or learned keys)."""

    def new_state_parts(self) -> tuple[GeometricallyInvariantModel, ColorModel | None]:
        """An empty GIM and, where the head uses one, colour model for a new target."""

    def initial_cells(self, coverage: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(foreground, background) memory cells of the first mask's cell coverage."""

    def initial_mask(self, frame: np.ndarray, box: Box, box_pixels: np.ndarray, view: View, s: D3S2State,
                     look: Look) -> np.ndarray:
        """The first-frame mask of a box initialisation: ``box_pixels`` are the given (possibly rotated) box's,
        ``box`` their bounding box; ``s`` holds the new target's GIM to use."""

    def segment(self, frame: np.ndarray, view: View, at: Placement, s: D3S2State, watch: Stopwatch,
                motion: Motion | None = None) -> Segmentation:
        """The frame's mask around ``at``."""

    def learn(self, s: D3S2State, frame: np.ndarray, mask: np.ndarray, update: bool) -> None:
        """What the head learns from a mask besides the GIM memories (first frame, or a reliable update)."""


class HandMadeMaskHead:
    strides = (8, 16)

    def __init__(self, config: D3S2Config, device: torch.device) -> None:
        self.config = config
        self.device = device
        self._dense_flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)

    def memory_features(self, features: dict, descriptor: torch.Tensor) -> torch.Tensor:
        return descriptor

    def new_state_parts(self) -> tuple[GeometricallyInvariantModel, ColorModel]:
        gim, seg = self.config.gim, self.config.segmentation
        return (GeometricallyInvariantModel(gim.fg_capacity, gim.bg_capacity, gim.top_k),
                ColorModel(seg.color_bins, seg.color_learning_rate))

    def initial_cells(self, coverage: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return initial_cells(coverage, self.config.gim)

    def core_weight(self, size: tuple[float, float]) -> float:
        """How hard a small target's box ellipse is pressed to the foreground: the base location weight times
        how many times the target's area falls short of a ``small_target_side`` square's, less one."""
        cfg = self.config.segmentation
        shortfall = cfg.small_target_side ** 2 / (size[0] * size[1]) - 1.0
        return min(cfg.location_weight * max(shortfall, 0.0), cfg.max_core_weight)

    def initial_mask(self, frame: np.ndarray, box: Box, box_pixels: np.ndarray, view: View, s: D3S2State,
                     look: Look) -> np.ndarray:
        cfg = self.config
        if min(box.w, box.h) < cfg.box_init.small_box_side:
            return box_pixels  # a box too small for GrabCut and coarse features to cut is its own best mask
        # The passes look closer than tracking does: cells of a tighter region resolve the background the
        # object encloses or casts. It holds the whole box however elongated.
        side = max(cfg.box_init.search_scale * math.sqrt(s.size[0] * s.size[1]), max(s.size))
        fine = look(SearchRegion(box.center[0], box.center[1], side, cfg.features.input_size))
        grid = fine.descriptor.shape[-2:]
        # Without the location prior: the box center is not necessarily on the object.
        at = Placement(fine.region.image_to_cell(s.center[0], s.center[1], DESCRIPTOR_STRIDE), s.size)
        box_cells = cell_coverage(box_pixels, fine.region, grid, self.device)

        def refine_pass(mask: np.ndarray) -> np.ndarray:
            coverage = cell_coverage(mask, fine.region, grid, self.device)
            bootstrap_memories(s.gim, fine.memory_features, coverage, box_cells, cfg.box_init, cfg.gim)
            self.learn(s, frame, mask, update=False)
            return self._segment(frame, fine, at, s, Stopwatch(), location_weight=0.0, core_weight=0.0).mask

        return box_init_mask(frame, box, box_pixels, cfg.box_init, refine_pass)

    def segment(self, frame: np.ndarray, view: View, at: Placement, s: D3S2State, watch: Stopwatch,
                motion: Motion | None = None) -> Segmentation:
        return self._segment(frame, view, at, s, watch, self.config.segmentation.location_weight,
                             self.core_weight(at.size), motion)

    def _segment(self, frame: np.ndarray, view: View, at: Placement, s: D3S2State, watch: Stopwatch,
                 location_weight: float, core_weight: float, motion: Motion | None = None) -> Segmentation:
        """Fused coarse probability -> refined full-resolution mask around the peak."""
        cfg = self.config.segmentation
        region = view.region
        with watch.stage("gim"):
            grid = view.descriptor.shape[-2:]
            location = at.location(region, grid, cfg.location_sigma, self.device)
            core = at.location(region, grid, INSCRIBED_SIGMA, self.device) if core_weight > 0 else None
            fg, bg = s.gim.channels(view.memory_features)
            coarse = fuse(fg, bg, location, cfg.fusion_temperature, location_weight, cfg.fusion_bias, core,
                          core_weight)
            coarse = coarse.float().cpu().numpy()

        with watch.stage("refine"):
            height, width = frame.shape[:2]
            mask = np.zeros((height, width), dtype=bool)
            x0, y0, x1, y1 = window = at.window(region, frame.shape[:2])
            if x1 - x0 < 2 or y1 - y0 < 2:
                return Segmentation(mask, window, 0.0, bg)
            factor = min(1.0, cfg.refine_max_side / max(x1 - x0, y1 - y0))
            rw, rh = max(2, int(round((x1 - x0) * factor))), max(2, int(round((y1 - y0) * factor)))
            fx, fy = (x1 - x0) / rw, (y1 - y0) / rh  # window pixels per refinement pixel
            matrix = region.resampled_window_to_cell_matrix(x0, y0, fx, fy, DESCRIPTOR_STRIDE)
            probability = cv2.warpAffine(coarse, matrix, (rw, rh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                         borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
            pixels = frame[y0:y1, x0:x1]
            guide = cv2.resize(pixels, (rw, rh), interpolation=cv2.INTER_AREA) if factor < 1 else pixels
            evidence = logit(probability) + cfg.color_weight * logit(s.color.posterior(guide))
            # Motion outside the tracked box is the surroundings'.
            anchor = at.anchor(region, window)
            if motion is not None:
                moved = self._motion_evidence(s, motion, window, (rw, rh), anchor)
                if moved is not None:
                    evidence = evidence + self.config.motion.segment_weight * moved
            probability = 1.0 / (1.0 + np.exp(-evidence))
            radius = max(1, int(round(cfg.refine_radius * math.sqrt(at.size[0] * at.size[1]) / max(fx, fy))))
            refined = guided_filter(guide.astype(np.float32) / 255.0, probability, radius, cfg.refine_eps)
            if factor < 1:
                refined = cv2.resize(refined, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
            window_mask = keep_target_components(refined > cfg.mask_threshold, anchor)
            mask[y0:y1, x0:x1] = window_mask
            mean_probability = float(refined[window_mask].mean()) if window_mask.any() else 0.0
        return Segmentation(mask, window, mean_probability, bg)

    def _motion_evidence(self, s: D3S2State, motion: Motion, window: tuple[int, int, int, int],
                         size: tuple[int, int], anchor: np.ndarray) -> np.ndarray | None:
        """Dense-flow evidence (models.motion.motion_evidence) on the refinement window resampled to ``size``."""
        x0, y0, x1, y1 = window
        cfg = self.config.motion

        def resampled(image: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA))

        previous, current = resampled(s.previous_gray[y0:y1, x0:x1]), resampled(motion.gray[y0:y1, x0:x1])
        fx, fy = (x1 - x0) / size[0], (y1 - y0) / size[1]
        # Backward flow gives every current pixel where it came from: its motion is the opposite.
        flow = -self._dense_flow.calc(current, previous, None)
        displacement = (motion.displacement[0] / fx, motion.displacement[1] / fy)
        shift = np.float32([[1, 0, displacement[0]], [0, 1, displacement[1]]])
        last_mask = resampled(s.previous_mask[y0:y1, x0:x1].astype(np.float32))
        target = cv2.warpAffine(last_mask, shift, size) > 0.5
        background = resampled(anchor.astype(np.float32)) < 0.5
        return motion_evidence(flow, displacement, target, background, cfg.segment_separation / max(fx, fy),
                               cfg.segment_agreement)

    def learn(self, s: D3S2State, frame: np.ndarray, mask: np.ndarray, update: bool) -> None:
        """The colour histograms, on the window around the target."""
        x0, y0, x1, y1 = target_window(s.center, s.size, frame.shape[:2])
        pixels, fg = frame[y0:y1, x0:x1], mask[y0:y1, x0:x1]
        (s.color.update if update else s.color.initialize)(pixels, fg, ~fg)


class LearnedMaskHead:
    strides = FEATURE_STRIDES

    def __init__(self, config: D3S2Config, device: torch.device) -> None:
        self.config = config
        self.device = device
        self.head = load_head(config.segmentation.head_weights or SHIPPED_HEAD, device)

    @torch.inference_mode()
    def memory_features(self, features: dict, descriptor: torch.Tensor) -> torch.Tensor:
        """The head's adjusted unit-norm features (D, H/8, W/8): what it was trained to compare."""
        return self.head.keys(features)[0]

    def new_state_parts(self) -> tuple[GeometricallyInvariantModel, None]:
        gim = self.config.gim
        return GeometricallyInvariantModel(gim.fg_capacity, gim.bg_capacity, self.head.config.top_k), None

    def initial_cells(self, coverage: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """By the rule the head was trained with (``SegmentationHead.memories``): a thin target covering no
        cell well keeps its best-covered cells, a target filling the region its least-covered ones."""
        config = self.head.config
        best, least = float(coverage.max()), float(coverage.min())
        fg = coverage >= (config.fg_coverage if best >= config.fg_coverage else best)
        bg = coverage <= (config.bg_coverage if least <= config.bg_coverage else least)
        if best <= 0:  # no target in the region: nothing to remember as foreground
            fg = torch.zeros_like(fg)
        return fg, bg

    def initial_mask(self, frame: np.ndarray, box: Box, box_pixels: np.ndarray, view: View, s: D3S2State,
                     look: Look) -> np.ndarray:
        """Memories from the filled box, one segmentation at the box centre, kept inside the box."""
        if min(box.w, box.h) < self.config.box_init.small_box_side:
            return box_pixels  # smaller than any target the head was trained on: the box is the best mask
        grid = view.memory_features.shape[-2:]
        s.gim.initialize(view.memory_features, *self.initial_cells(
            cell_coverage(box_pixels, view.region, grid, self.device)))
        at = Placement(view.region.image_to_cell(s.center[0], s.center[1], DESCRIPTOR_STRIDE), s.size)
        mask = self.segment(frame, view, at, s, Stopwatch()).mask & box_pixels
        if mask.sum() < self.config.box_init.min_overlap * box_pixels.sum():
            return box_pixels  # the head found no object in the box: the box is the best mask there is
        return mask

    def segment(self, frame: np.ndarray, view: View, at: Placement, s: D3S2State, watch: Stopwatch,
                motion: Motion | None = None) -> Segmentation:
        """GIM channels of the keys and the location channel at the peak through the refinement pathway;
        its crop logits resampled into the image window around the peak."""
        region, keys = view.region, view.memory_features
        with watch.stage("gim"):
            location = at.location(region, keys.shape[-2:], self.config.segmentation.location_sigma, self.device)
            fg, bg = s.gim.channels(keys)
        with watch.stage("refine"):
            with torch.inference_mode():
                logits = self.head.decode(view.features, keys[None], fg[None], bg[None], location[None])
            logits = logits[0, 0].float().cpu().numpy()
            mask = np.zeros(frame.shape[:2], dtype=bool)
            x0, y0, x1, y1 = window = at.window(region, frame.shape[:2])
            if x1 - x0 < 2 or y1 - y0 < 2:
                return Segmentation(mask, window, 0.0, bg)
            window_logits = crop_to_window(logits, region, window)
            # As for the hand-made head: only components touching the tracked box are the target.
            window_mask = keep_target_components(window_logits > 0, at.anchor(region, window))
            mask[y0:y1, x0:x1] = window_mask
            mean_probability = 0.0
            if window_mask.any():
                mean_probability = float((1.0 / (1.0 + np.exp(-window_logits[window_mask]))).mean())
        return Segmentation(mask, window, mean_probability, bg)

    def learn(self, s: D3S2State, frame: np.ndarray, mask: np.ndarray, update: bool) -> None:
        """Nothing besides the memories: the pathways were learned offline."""


MASK_HEADS: dict[str, type] = {"handmade": HandMadeMaskHead, "learned": LearnedMaskHead}


def crop_to_window(crop_values: np.ndarray, region: SearchRegion, window: tuple[int, int, int, int]) -> np.ndarray:
    """Values on the crop of ``region`` resampled onto the image window (x0, y0, x1, y1); outside the crop
    they are ``OUTSIDE_LOGIT``."""
    x0, y0, x1, y1 = window
    matrix = region.image_to_crop_matrix()
    matrix[:, 2] += matrix[:, :2] @ np.array([x0, y0], dtype=float)  # window pixel -> crop pixel
    return cv2.warpAffine(crop_values, matrix, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=OUTSIDE_LOGIT)
