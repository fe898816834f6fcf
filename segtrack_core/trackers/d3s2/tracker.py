"""The D3S2 algorithm: a model (backbone + config) applied to one target's state (``D3S2State``)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from ...geometry import box_to_rotated_box, mask_to_box, mask_to_rotated_box, rotated_box_to_box, target_to_mask
from ...models.dcf import Peak, find_peak, gaussian_label, label_sigma
from ...models.features import DESCRIPTOR_STRIDE, DescriptorExtractor, SearchRegion, project, raw_descriptor
from ...models.gem import DiscriminativeFilter, second_peak
from ...models.motion import grid_points, median_flow
from ...nets.efficientnet_lite import load_backbone
from ...runtime import start_runtime
from ...stopwatch import Stopwatch
from ...types import Box, MaskTarget, RotatedBox, Target, TrackResult, TrackState
from ..base import Tracker
from .box_init import least_background_like
from .config import D3S2Config
from .segmentation import MASK_HEADS, MaskHead, Motion, Placement, Segmentation, View, cell_coverage
from .state import D3S2State, box_fits


class D3S2Tracker(Tracker):
    name = "d3s2"

    def __init__(self, config: D3S2Config) -> None:
        super().__init__()
        self.config = config
        self._device = start_runtime(config.runtime)
        backbone = load_backbone(config.features.backbone, config.features.weights or None)
        self.extractor = DescriptorExtractor(backbone, config.features.feature_dim, self._device,
                                             config.runtime.half)
        self.head: MaskHead = MASK_HEADS[config.segmentation.head](config, self._device)
        self._state: D3S2State | None = None

    @property
    def device(self) -> str:
        return str(self._device)

    def reset(self) -> None:
        super().reset()
        self._state = None

    # ---------------------------------------------------------------- geometry helpers
    def _region(self, s: D3S2State, search_scale: float | None = None) -> SearchRegion:
        return self._search_region(s.center, s.size, search_scale)

    def _search_region(self, center: tuple[float, float], target_size: tuple[float, float],
                       search_scale: float | None = None) -> SearchRegion:
        """Search region around ``center``; a larger ``search_scale`` keeps the feature scale by growing the
        input size in proportion."""
        features = self.config.features
        scale = features.search_scale if search_scale is None else search_scale
        size = int(round(features.input_size * scale / features.search_scale / 16)) * 16
        pixels_per_input_pixel = (features.search_scale * math.sqrt(target_size[0] * target_size[1])
                                  / features.input_size)
        return SearchRegion(center[0], center[1], size * pixels_per_input_pixel, size)

    def _redetect(self, s: D3S2State, frame: np.ndarray) -> None:
        """While lost: scan a larger region (features at the tracking scale) with the GEM and move the
        center to its strongest response; the tracking pass that follows decides whether it is the target."""
        region = self._region(s, self.config.confidence.redetect_scale)
        peak = find_peak(s.gem.response(self._describe(s, frame, region)))
        x, y = region.cell_to_image(peak.x, peak.y, DESCRIPTOR_STRIDE)
        height, width = frame.shape[:2]
        s.center = (min(max(x, 0.0), float(width)), min(max(y, 0.0), float(height)))

    @staticmethod
    def _size_cells(s: D3S2State, region: SearchRegion) -> tuple[float, float]:
        return (s.size[0] * region.scale / DESCRIPTOR_STRIDE, s.size[1] * region.scale / DESCRIPTOR_STRIDE)

    def _coverage(self, mask: np.ndarray, region: SearchRegion, grid: tuple[int, int]) -> torch.Tensor:
        return cell_coverage(mask, region, grid, self._device)

    def _label(self, s: D3S2State, region: SearchRegion, grid: tuple[int, int]) -> torch.Tensor:
        center = region.image_to_cell(s.center[0], s.center[1], DESCRIPTOR_STRIDE)
        sigma = label_sigma(self._size_cells(s, region), self.config.gem.label_sigma)
        return gaussian_label(grid[0], grid[1], center, sigma, self._device)

    def _describe(self, s: D3S2State, frame: np.ndarray, region: SearchRegion) -> torch.Tensor:
        return project(self.extractor.raw(region.crop(frame)), s.projection)

    def _view(self, s: D3S2State, frame: np.ndarray, region: SearchRegion) -> View:
        return self._view_of(region, self._features(frame, region), s.projection)

    def _features(self, frame: np.ndarray, region: SearchRegion) -> dict:
        return self.extractor.features(region.crop(frame)[None], self.head.strides)

    def _view_of(self, region: SearchRegion, features: dict, projection) -> View:
        descriptor = project(raw_descriptor(features)[0], projection)
        return View(region, features, descriptor, self.head.memory_features(features, descriptor))

    def _flow(self, s: D3S2State, gray: np.ndarray) -> tuple[float, float] | None:
        """The target's displacement since the last frame: median flow of its last mask's pixels, computed
        on a window twice the search region around it."""
        if s.previous_gray is None or s.previous_mask is None:
            return None
        motion = self.config.motion
        half = self._region(s).side  # a pyramid of 3 levels needs room around the target
        height, width = gray.shape
        x0, y0 = int(max(0, s.center[0] - half)), int(max(0, s.center[1] - half))
        x1, y1 = int(min(width, s.center[0] + half)), int(min(height, s.center[1] + half))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        points = grid_points(s.previous_mask[y0:y1, x0:x1], motion.flow_points)
        return median_flow(s.previous_gray[y0:y1, x0:x1], gray[y0:y1, x0:x1], points, motion.flow_window,
                           motion.flow_max_error, motion.flow_min_points)

    def _locate(self, s: D3S2State, region: SearchRegion, response: torch.Tensor, flow_predicted: bool) -> Peak:
        """The GEM's peak. Where the flow predicted the position (the region's centre), a response is
        penalised by its distance from it, up to ``motion.prior_weight`` reliable peak heights: a look-alike
        must clearly beat the target to draw the tracker away. The peak's value stays the GEM's own."""
        motion = self.config.motion
        if not flow_predicted or motion.prior_weight <= 0:
            return find_peak(response)
        height, width = response.shape
        center = region.image_to_cell(s.center[0], s.center[1], DESCRIPTOR_STRIDE)
        sigma = max(motion.prior_sigma * math.sqrt(math.prod(self._size_cells(s, region))), 0.5)
        penalty = motion.prior_weight * s.peak_reference * (
            1.0 - gaussian_label(height, width, center, (sigma, sigma), self._device))
        peak = find_peak(response - penalty)
        cell = (min(int(round(peak.y)), height - 1), min(int(round(peak.x)), width - 1))
        return Peak(peak.x, peak.y, peak.value + float(penalty[cell]))

    # ---------------------------------------------------------------- initialisation
    def _initialize(self, frame: np.ndarray, target: Target) -> D3S2State:
        cfg = self.config
        shape = frame.shape[:2]
        proxy = target_to_mask(target, shape)
        if isinstance(target, Box):
            box = target
        elif isinstance(target, RotatedBox):
            box = rotated_box_to_box(target)
        else:
            box = mask_to_box(proxy)
        # Everything is built into a new state (adopted by the caller): the current target is untouched.
        size = (max(box.w, cfg.box_init.min_size), max(box.h, cfg.box_init.min_size))
        region = self._search_region(box.center, size)
        features = self._features(frame, region)
        projection = self.extractor.fit_projection(raw_descriptor(features)[0])
        gim, color = self.head.new_state_parts()
        s = D3S2State(projection=projection, gem=DiscriminativeFilter(cfg.gem), gim=gim, color=color,
                      center=box.center, size=size)
        view = self._view_of(region, features, projection)
        grid = view.descriptor.shape[-2:]
        self._initialize_gem(s, frame, region, view.descriptor)
        if isinstance(target, MaskTarget):
            mask = proxy
        else:
            mask = self.head.initial_mask(frame, box, proxy, view, s, lambda r: self._view(s, frame, r))
        s.gim.initialize(view.memory_features, *self.head.initial_cells(self._coverage(mask, region, grid)))
        self.head.learn(s, frame, mask, update=False)
        measured = mask
        if isinstance(target, MaskTarget):
            # A given mask may hold parts the tracker's masks never will (legs, a tail: thinner than its
            # cells). If its own mask of this frame misses the given box by more than mask_fit, that mask is
            # what later masks are measured against, and they do not measure the size (as for a box init
            # whose mask found only part of the box).
            center = region.image_to_cell(s.center[0], s.center[1], DESCRIPTOR_STRIDE)
            own = self.head.segment(frame, view, Placement(center, s.size), s, Stopwatch()).mask
            own_area = own.sum()
            if own_area > 0 and (own & mask).sum() > 0.5 * own_area:  # else not a view of the given target
                own_box, given_box = mask_to_box(own), mask_to_box(mask)
                if not box_fits((given_box.w / own_box.w, given_box.h / own_box.h), cfg.scale.mask_fit):
                    measured = own
        mask_box = mask_to_box(measured)
        s.size_from_mask = (s.size[0] / mask_box.w, s.size[1] / mask_box.h)
        s.mask_aspect = mask_box.w / mask_box.h
        s.fill_ratio = float(measured.sum()) / (s.size[0] * s.size[1])
        if cfg.motion.flow:
            s.previous_gray, s.previous_mask = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), mask
        return s

    def _adopt(self, state: D3S2State) -> None:
        self._state = state

    def _initialize_gem(self, s: D3S2State, frame: np.ndarray, region: SearchRegion,
                        descriptor: torch.Tensor) -> None:
        """Train the GEM on the first frame and augmented views of it (shifted regions, a mirror image, a
        blur), as ATOM and D3S2 do, so that one frame gives a filter that generalises."""
        grid = descriptor.shape[-2:]
        shift = self.config.gem.init_shift * region.side
        regions = [region] + [SearchRegion(region.cx + dx, region.cy + dy, region.side, region.size)
                              for dx, dy in ((shift, 0.0), (-shift, 0.0), (0.0, shift), (0.0, -shift))]
        crop = region.crop(frame)
        views = [r.crop(frame) for r in regions[1:]] + [crop[:, ::-1], cv2.GaussianBlur(crop, (0, 0), 1.5)]
        raw = self.extractor.raw_batch(np.stack(views))  # one backbone pass for all views
        samples = [descriptor] + [project(view, s.projection) for view in raw]
        labels = [self._label(s, r, grid) for r in regions]
        labels += [labels[0].flip(-1), labels[0]]
        s.gem.initialize(torch.stack(samples), torch.stack(labels))
        s.peak_reference = max(float(s.gem.response(descriptor).max()), 1e-3)

    # ---------------------------------------------------------------- tracking
    def _track(self, frame: np.ndarray) -> TrackResult:
        cfg, s = self.config, self._state
        watch = Stopwatch()
        previous_center = s.center
        gray = flow = None
        if cfg.motion.flow:
            with watch.stage("motion"):
                gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
                flow = None if s.state is TrackState.LOST else self._flow(s, gray)
        if s.state is TrackState.LOST:
            with watch.stage("redetect"):
                self._redetect(s, frame)
        else:
            # The target's own optical flow, else constant velocity, keeps fast targets inside the region.
            height, width = frame.shape[:2]
            dx, dy = flow if flow is not None else s.velocity
            s.center = (min(max(s.center[0] + dx, 0.0), float(width)),
                        min(max(s.center[1] + dy, 0.0), float(height)))
        region = self._region(s)
        with watch.stage("features"):
            view = self._view(s, frame, region)
        with watch.stage("gem"):
            response = s.gem.response(view.descriptor)
            # The flow of a tracked mask is the target's; that of an uncertain one may be an occluder's.
            peak = self._locate(s, region, response, flow is not None and s.state is TrackState.TRACKING)

        motion = None
        if flow is not None and cfg.motion.segment_weight > 0 and min(s.size) >= cfg.motion.segment_min_side:
            motion = Motion(gray, flow)
        segmentation = self.head.segment(frame, view, Placement((peak.x, peak.y), s.size), s, watch, motion)
        with watch.stage("update"):
            result = self._conclude(s, frame, region, view, response, peak, segmentation, previous_center)
        s.previous_gray, s.previous_mask = gray, result.mask
        result.timings = watch.finish()
        return result

    def _conclude(self, s: D3S2State, frame: np.ndarray, region: SearchRegion, view: View,
                  response: torch.Tensor, peak, segmentation: Segmentation,
                  previous_center: tuple[float, float]) -> TrackResult:
        """Score and state of the frame, the new target geometry, model updates and the reported boxes;
        ``s.center`` is still the predicted position the search region was centred on."""
        cfg = self.config
        predicted_center = s.center
        dcf_quality = float(np.clip(peak.value / s.peak_reference, 0.0, 1.0))
        mask, mean_probability = segmentation.mask, segmentation.mean_probability
        x0, y0, x1, y1 = segmentation.window
        window_mask = mask[y0:y1, x0:x1]  # the mask is empty outside its window: measure only there
        area = float(window_mask.sum())
        expected_area = s.fill_ratio * s.size[0] * s.size[1]
        area_ratio = area / max(expected_area, 1.0)
        area_quality = min(area_ratio, 1.0 / area_ratio) if area > 0 else 0.0
        mask_quality = max(0.0, 2.0 * mean_probability - 1.0)
        weights = cfg.confidence
        score = float(np.clip(weights.gem_weight * dcf_quality + weights.mask_weight * mask_quality
                              + weights.area_weight * area_quality, 0.0, 1.0))

        # A peak far from where the target should be is something else unless it is convincing (the target
        # hidden, a look-alike): such a frame is weak, like a low-scored one.
        peak_image = region.cell_to_image(peak.x, peak.y, DESCRIPTOR_STRIDE)
        jump = math.dist(peak_image, predicted_center) / math.sqrt(s.size[0] * s.size[1])
        far = jump > cfg.motion.max_jump and score < cfg.motion.jump_score
        # One weak frame (blur, a partial occlusion) is uncertain; only a run of them is a loss.
        s.weak_frames = s.weak_frames + 1 if score < cfg.lost_threshold or far else 0
        recovering = s.state is TrackState.LOST
        if (recovering and score < max(cfg.tracking_threshold, cfg.motion.jump_score)) or (
                s.weak_frames >= cfg.confidence.lost_patience):
            state = TrackState.LOST
        elif score < cfg.tracking_threshold or far or area == 0:
            state = TrackState.UNCERTAIN  # without a mask, even a perfect GEM peak (score 0.5) is not tracking
        else:
            state = TrackState.TRACKING
        s.state = state

        if state is TrackState.LOST:
            s.velocity = (0.0, 0.0)
            return TrackResult(np.zeros_like(mask), score, None, None, state)
        if far:  # coast on the prediction, with nothing to report as the target's mask
            s.center = predicted_center
            s.slow_down(cfg.motion.velocity_decay)
            box = s.box()
            return TrackResult(np.zeros_like(mask), score, box, box_to_rotated_box(box), state)

        scale = cfg.scale
        measures_scale = s.mask_measures_scale(scale.mask_fit)
        consistent = 1.0 / scale.max_area_change <= area_ratio <= scale.max_area_change  # so the mask is not empty
        mask_box = None
        if area > 0:
            wbox = mask_to_box(window_mask)
            mask_box = Box(wbox.x + x0, wbox.y + y0, wbox.w, wbox.h)
        # Decoupled as in D3S2: the GEM, trained with its label at the box centre, localises the target and
        # the mask measures its size. The mask's own centre follows whatever it bleeds into (a touching
        # look-alike, a shadow) and, for a partial mask, the part it covers.
        if consistent or score >= cfg.lost_threshold:
            s.center = peak_image
        else:
            s.center = predicted_center  # too weak to trust the peak (occlusion): coast on the motion
        steady = False
        if consistent:
            aspect = mask_box.w / mask_box.h
            limit = scale.max_aspect_change if measures_scale else scale.partial_aspect_change
            steady = abs(math.log(aspect / s.mask_aspect)) <= math.log(limit)
            if state is TrackState.TRACKING and steady and measures_scale:
                step, rate = scale.max_step, scale.learning_rate
                measured = (mask_box.w * s.size_from_mask[0], mask_box.h * s.size_from_mask[1])
                measured = tuple(min(max(m, z / step), z * step) for z, m in zip(s.size, measured))
                s.size = tuple((1 - rate) * z + rate * m for z, m in zip(s.size, measured))
        motion = cfg.motion
        if state is TrackState.TRACKING:
            rate = motion.velocity_rate
            moved = (s.center[0] - previous_center[0], s.center[1] - previous_center[1])
            s.velocity = tuple((1 - rate) * v + rate * m for v, m in zip(s.velocity, moved))
        else:
            s.slow_down(motion.velocity_decay)
        if state is TrackState.TRACKING and score >= cfg.confidence.update_threshold and steady:
            # A second peak close to the first is a look-alike: the GEM learns this frame as a hard negative.
            distractor = second_peak(response, (peak.x, peak.y), self._size_cells(s, region)) > (
                cfg.gem.distractor_ratio * peak.value)
            self._update_models(s, frame, mask, view, region, segmentation.bg_similarity, distractor)
            rate = cfg.gem.peak_reference_rate
            s.peak_reference = (1 - rate) * s.peak_reference + rate * peak.value
        # The mask's box is the object's box only if the mask covered the object on the first frame.
        if mask_box is not None and measures_scale:
            box = mask_box
            wrot = mask_to_rotated_box(window_mask)
            rotated = RotatedBox(wrot.cx + x0, wrot.cy + y0, wrot.w, wrot.h, wrot.angle)
        else:
            box = s.box()
            rotated = box_to_rotated_box(box)
        return TrackResult(mask, score, box, rotated, state)

    def _update_models(self, s: D3S2State, frame: np.ndarray, mask: np.ndarray, view: View,
                       region: SearchRegion, bg_similarity: torch.Tensor, distractor: bool) -> None:
        gim = self.config.gim
        descriptor = view.descriptor
        grid = descriptor.shape[-2:]
        coverage = self._coverage(mask, region, grid)
        fg_cells = least_background_like(coverage >= gim.update_fg_coverage, bg_similarity, gim.update_keep)
        s.gim.update(view.memory_features, fg_cells, coverage <= gim.update_bg_coverage)
        self.head.learn(s, frame, mask, update=True)
        # The GEM learns on the region the descriptor came from, with the label at the new center.
        s.gem.update(descriptor, self._label(s, region, grid), hard_negative=distractor)
