"""SiamMask (Wang et al., CVPR 2019, "sharp" variant) as a backend: the official tracking step unchanged.

The step is ``siamese_init`` / ``siamese_track`` of the official ``tools/test.py`` with the refinement
module: crop the search region (context 0.5, 255 px), score 5 anchors on the 25x25 map, penalise scale
and ratio changes, blend in a cosine window, move to the best anchor's box with a learning rate scaled
by its score, refine the mask at that position, project it back into the frame, threshold it, and fit
the minimum-area rectangle around its largest contour. It needs the official weights (``weights``).

SiamMask has no loss handling: it always moves to the best anchor. The state is derived for reporting
only and never changes the step: ``lost`` when the foreground score is below ``lost_threshold`` or the
mask is empty (the result then has an empty mask and no boxes, as for every backend); ``uncertain``
below ``tracking_threshold`` or when the mask's largest contour is too small (<= 100 px) for the
rectangle fit; ``tracking`` otherwise.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..config import check_thresholds, section, setting
from ..errors import ConfigError, MissingWeightsError
from ..geometry import box_to_rotated_box, clip_box, mask_to_box, polygon_to_rotated_box, rotated_box_to_box
from ..nets.siammask import ANCHOR_COUNT, REFINED_SIDE, load_siammask
from ..runtime import RuntimeConfig, start_runtime
from ..stopwatch import Stopwatch
from ..types import Box, MaskTarget, RotatedBox, Target, TrackResult, TrackState
from .base import Tracker

# Fixed by the network (the same in every official configuration).
EXEMPLAR_SIZE = 127
INSTANCE_SIZE = 255
TOTAL_STRIDE = 8
BASE_SIZE = 8
SCORE_SIZE = (INSTANCE_SIZE - EXEMPLAR_SIZE) // TOTAL_STRIDE + 1 + BASE_SIZE  # 25
CONTEXT_AMOUNT = 0.5
ANCHOR_RATIOS = (0.33, 0.5, 1.0, 2.0, 3.0)
ANCHOR_SCALE = 8
MIN_CONTOUR_AREA = 100.0  # official: smaller masks fall back to the axis-aligned box of the state

@dataclass(frozen=True)
class KnownCheckpoint:
    name: str
    url: str
    config: str
    origin: str
    backend: str = "siammask"
    licence: str = "MIT licence (github.com/foolwood/SiamMask)"


KNOWN_CHECKPOINTS = (
    KnownCheckpoint("SiamMask_DAVIS.pth", "http://www.robots.ox.ac.uk/~qwang/SiamMask_DAVIS.pth",
                    "siammask/davis", "official release (Wang et al., CVPR 2019), trained for DAVIS / "
                    "video object segmentation"),
    KnownCheckpoint("SiamMask_VOT.pth", "http://www.robots.ox.ac.uk/~qwang/SiamMask_VOT.pth",
                    "siammask/vot", "official release (Wang et al., CVPR 2019), trained for VOT"),
)

WEIGHTS_HELP = (
    "siammask needs the official SiamMask weights, published with the code at "
    "https://github.com/foolwood/SiamMask (MIT licence): SiamMask_DAVIS.pth and SiamMask_VOT.pth, "
    "downloadable from http://www.robots.ox.ac.uk/~qwang/SiamMask_DAVIS.pth and "
    "http://www.robots.ox.ac.uk/~qwang/SiamMask_VOT.pth. Pass one with --weights PATH (CLI), the 'weights' "
    "config key or the node's 'tracker.weights' parameter; `segtrack weights FILE` checks a file.")


@dataclass
class SiamMaskConfig:
    weights: str = setting("", "SiamMask_DAVIS.pth or SiamMask_VOT.pth (required)")
    runtime: RuntimeConfig = section(RuntimeConfig, "device, fp16 network, CPU threads")
    # The official hyper-parameters ("hp"); the defaults are config_davis.json's.
    penalty_k: float = setting(0.04, "scale/ratio change penalty")
    window_influence: float = setting(0.4, "weight of the cosine window")
    lr: float = setting(1.0, "size learning rate (times penalty x score of the chosen anchor)")
    seg_thr: float = setting(0.35, "mask probability threshold")
    # Reporting only (not part of SiamMask).
    tracking_threshold: float = setting(0.8, "score above which the target is TRACKING")
    lost_threshold: float = setting(0.3, "score below which the target is LOST")

    def __post_init__(self) -> None:
        check_thresholds(self.lost_threshold, self.tracking_threshold)
        if not 0 <= self.window_influence <= 1 or not 0 <= self.lr <= 1:
            raise ConfigError("window_influence and lr must lie in [0, 1]")
        if not 0 < self.seg_thr < 1 or self.penalty_k < 0:
            raise ConfigError("seg_thr must lie in (0, 1) and penalty_k must be >= 0")


def make_anchors() -> np.ndarray:
    """(5*25*25, 4) float32 anchors (cx, cy, w, h) in search-crop pixels relative to its centre;
    index = anchor * 625 + row * 25 + col."""
    area = TOTAL_STRIDE * TOTAL_STRIDE
    shapes = []
    for ratio in ANCHOR_RATIOS:
        ws = int(math.sqrt(area / ratio))
        hs = int(ws * ratio)
        shapes.append((ws * ANCHOR_SCALE, hs * ANCHOR_SCALE))
    offsets = TOTAL_STRIDE * (np.arange(SCORE_SIZE) - SCORE_SIZE // 2)
    xx, yy = np.meshgrid(offsets, offsets)
    anchors = np.zeros((ANCHOR_COUNT, SCORE_SIZE * SCORE_SIZE, 4), np.float32)
    for a, (w, h) in enumerate(shapes):
        anchors[a, :, 0], anchors[a, :, 1] = xx.ravel(), yy.ravel()
        anchors[a, :, 2], anchors[a, :, 3] = w, h
    return anchors.reshape(-1, 4)


def make_window() -> np.ndarray:
    return np.tile(np.outer(np.hanning(SCORE_SIZE), np.hanning(SCORE_SIZE)).ravel(), ANCHOR_COUNT)


def crop_subwindow(frame: np.ndarray, pos: np.ndarray, model_sz: int, original_sz: int,
                   avg_chans: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The official ``get_subwindow_tracking``: the original_sz square around pos (outside pixels set to
    the truncated channel means), resized to model_sz. Returns the HxWx3 uint8 crop and
    [xmin, xmax, ymin, ymax (inclusive), left, top, right, bottom padding]."""
    height, width = frame.shape[:2]
    c = (original_sz + 1) / 2
    xmin, ymin = round(float(pos[0]) - c), round(float(pos[1]) - c)  # Python round: half to even
    xmax, ymax = xmin + original_sz - 1, ymin + original_sz - 1
    pads = (max(0, -xmin), max(0, -ymin), max(0, xmax - width + 1), max(0, ymax - height + 1))
    if any(pads):
        patch = np.empty((original_sz, original_sz, 3), np.uint8)
        patch[:] = avg_chans.astype(np.uint8)  # the official uint8 assignment truncates
        x0, y0 = max(xmin, 0), max(ymin, 0)
        x1, y1 = min(xmax + 1, width), min(ymax + 1, height)
        if x1 > x0 and y1 > y0:
            patch[y0 - ymin:y1 - ymin, x0 - xmin:x1 - xmin] = frame[y0:y1, x0:x1]
    else:
        patch = frame[ymin:ymax + 1, xmin:xmax + 1]
    if original_sz != model_sz:
        patch = cv2.resize(patch, (model_sz, model_sz))
    return np.ascontiguousarray(patch), np.array([xmin, xmax, ymin, ymax, *pads], np.int64)


def back_project(mask: np.ndarray, crop_box: np.ndarray, row: int, col: int, shape: tuple[int, int]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 127x127 mask of score position (row, col) warped into the frame (-1 outside its window),
    with the official sub_box and back_box. Keeps the official (size-1)/size scale of ``crop_back``."""
    height, width = shape
    s = crop_box[2] / INSTANCE_SIZE
    sub_box = np.array([crop_box[0] + (col - BASE_SIZE / 2) * TOTAL_STRIDE * s,
                        crop_box[1] + (row - BASE_SIZE / 2) * TOTAL_STRIDE * s,
                        s * EXEMPLAR_SIZE, s * EXEMPLAR_SIZE])
    s = REFINED_SIDE / sub_box[2]
    back_box = np.array([-sub_box[0] * s, -sub_box[1] * s, width * s, height * s])
    a, b = (width - 1) / back_box[2], (height - 1) / back_box[3]
    mapping = np.array([[a, 0.0, -a * back_box[0]], [0.0, b, -b * back_box[1]]])
    warped = cv2.warpAffine(mask, mapping, (width, height), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=-1)
    return warped, sub_box, back_box


def largest_contour_box(target_mask: np.ndarray) -> tuple[Optional[np.ndarray], float]:
    """cv2.boxPoints of the minimum-area rectangle around the largest external contour (pixel-centre
    coordinates, OpenCV's order) when its area exceeds 100 px, else None; and that area."""
    contours, _ = cv2.findContours(target_mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None, 0.0
    areas = [cv2.contourArea(c) for c in contours]
    best = int(np.argmax(areas))
    if areas[best] <= MIN_CONTOUR_AREA:
        return None, areas[best]
    return cv2.boxPoints(cv2.minAreaRect(contours[best].reshape(-1, 2))), areas[best]


@dataclass
class StepRecord:
    """Every stage of one official tracking step (names as in ``siamese_track``)."""

    crop_box: np.ndarray
    x_crop: np.ndarray  # HxWx3 uint8
    x_subwindow: np.ndarray
    scale_x: float
    score: np.ndarray  # (3125,) foreground probability
    delta: np.ndarray  # (4, 3125) decoded boxes in crop pixels
    penalty: np.ndarray
    pscore: np.ndarray
    best_pscore_id: int
    lr: float
    res_pos: np.ndarray  # new position and size before the clamp
    res_sz: np.ndarray
    mask: np.ndarray  # (127, 127) refined probability at the best position
    sub_box: np.ndarray  # the mask's square in the frame (x, y, w, h)
    back_box: np.ndarray  # the frame in the mask's coordinates (x, y, w, h)
    mask_in_img: np.ndarray  # (H, W) float32, -1 outside the back-projected window
    target_mask: np.ndarray  # (H, W) uint8
    polygon: Optional[np.ndarray]  # (4, 2) rectangle from the mask, None when the contour is too small
    contour_area: float
    timings: dict  # seconds per stage


class SiamMaskTracker(Tracker):
    name = "siammask"

    def __init__(self, config: SiamMaskConfig) -> None:
        super().__init__()
        self.config = config
        if not config.weights:
            raise MissingWeightsError(WEIGHTS_HELP)
        self._device = start_runtime(config.runtime)
        self.dtype = torch.float16 if config.runtime.half else torch.float32
        self.net = load_siammask(config.weights).to(self._device, self.dtype)
        self.anchor = make_anchors()
        self.window = make_window()
        self.zf: Optional[torch.Tensor] = None
        self.avg_chans = np.zeros(3)
        self.pos = np.zeros(2)  # target centre (x, y), pixels
        self.size = np.ones(2)  # target (w, h), pixels

    @property
    def device(self) -> str:
        return str(self._device)

    def _to_tensor(self, crop: np.ndarray) -> torch.Tensor:
        # BGR 0..255, not normalised: what the official network was trained on.
        return torch.from_numpy(crop.transpose(2, 0, 1)[None].copy()).to(self._device, self.dtype)

    def _initialize(self, frame: np.ndarray, target: Target) -> tuple:
        if isinstance(target, MaskTarget):
            box = mask_to_box(np.asarray(target.mask) != 0)
        elif isinstance(target, RotatedBox):
            box = rotated_box_to_box(target)
        else:
            box = target
        pos = np.array([box.x + box.w / 2, box.y + box.h / 2], np.float64)
        size = np.array([box.w, box.h], np.float64)
        avg_chans = np.mean(frame, axis=(0, 1))
        context = CONTEXT_AMOUNT * size.sum()
        s_z = round(math.sqrt((size[0] + context) * (size[1] + context)))
        z_crop, _ = crop_subwindow(frame, pos, EXEMPLAR_SIZE, s_z, avg_chans)
        with torch.inference_mode():
            zf = self.net.template(self._to_tensor(z_crop))
        return pos, size, avg_chans, zf

    def _adopt(self, state: tuple) -> None:
        self.pos, self.size, self.avg_chans, self.zf = state

    def step(self, frame: np.ndarray) -> StepRecord:
        """One official tracking step from the current pos/size; updates them (clamped to the frame)."""
        cfg = self.config
        height, width = frame.shape[:2]
        watch = Stopwatch()
        context = CONTEXT_AMOUNT * self.size.sum()
        # The official code swaps w and h here (against the template); the product is the same.
        s_x = math.sqrt((self.size[1] + context) * (self.size[0] + context))
        scale_x = EXEMPLAR_SIZE / s_x
        s_x += 2 * ((INSTANCE_SIZE - EXEMPLAR_SIZE) / 2) / scale_x
        side = round(s_x)
        crop_box = np.array([self.pos[0] - side / 2, self.pos[1] - side / 2, side, side], np.float64)
        x_crop, subwindow = crop_subwindow(frame, self.pos, INSTANCE_SIZE, side, self.avg_chans)
        watch.lap("crop")

        with torch.inference_mode():
            out = self.net.search(self._to_tensor(x_crop), self.zf)
            cls = out.cls.float().permute(1, 2, 3, 0).reshape(2, -1).t()
            score = F.softmax(cls, dim=1)[:, 1].cpu().numpy()
            delta = out.loc.float().permute(1, 2, 3, 0).reshape(4, -1).cpu().numpy()
        watch.lap("network")
        anchor = self.anchor
        delta[0] = delta[0] * anchor[:, 2] + anchor[:, 0]
        delta[1] = delta[1] * anchor[:, 3] + anchor[:, 1]
        delta[2] = np.exp(delta[2]) * anchor[:, 2]
        delta[3] = np.exp(delta[3]) * anchor[:, 3]

        def change(r: np.ndarray) -> np.ndarray:
            return np.maximum(r, 1.0 / r)

        def padded_size(w: np.ndarray, h: np.ndarray) -> np.ndarray:
            pad = (w + h) * 0.5
            return np.sqrt((w + pad) * (h + pad))

        size_in_crop = self.size * scale_x
        w, h = delta[2].astype(np.float64), delta[3].astype(np.float64)
        s_c = change(padded_size(w, h) / padded_size(size_in_crop[0], size_in_crop[1]))
        r_c = change((size_in_crop[0] / size_in_crop[1]) / (w / h))
        penalty = np.exp(-(r_c * s_c - 1) * cfg.penalty_k)
        pscore = penalty * score * (1 - cfg.window_influence) + self.window * cfg.window_influence
        best = int(np.argmax(pscore))
        pred = delta[:, best].astype(np.float64) / scale_x
        lr = float(penalty[best] * score[best] * cfg.lr)
        res_pos = pred[:2] + self.pos
        res_sz = self.size * (1 - lr) + pred[2:] * lr

        _, row, col = np.unravel_index(best, (ANCHOR_COUNT, SCORE_SIZE, SCORE_SIZE))
        watch.lap("decode")
        with torch.inference_mode():
            logits = self.net.refine(out, int(row), int(col)).float()
            mask = logits.sigmoid().reshape(REFINED_SIDE, REFINED_SIDE).cpu().numpy()
        watch.lap("refine")
        mask_in_img, sub_box, back_box = back_project(mask, crop_box, int(row), int(col), (height, width))
        target_mask = (mask_in_img > cfg.seg_thr).astype(np.uint8)
        polygon, area = largest_contour_box(target_mask)
        watch.lap("mask")

        self.pos = np.array([min(max(res_pos[0], 0.0), width), min(max(res_pos[1], 0.0), height)])
        self.size = np.array([min(max(res_sz[0], 10.0), width), min(max(res_sz[1], 10.0), height)])
        return StepRecord(crop_box, x_crop, subwindow, scale_x, score, delta, penalty, pscore, best, lr,
                          res_pos, res_sz, mask, sub_box, back_box, mask_in_img, target_mask, polygon, area,
                          watch.timings)

    def _track(self, frame: np.ndarray) -> TrackResult:
        start = time.perf_counter()
        record = self.step(frame)
        shape = frame.shape[:2]
        score = float(record.score[record.best_pscore_id])
        mask = record.target_mask.astype(bool)
        box = mask_to_box(mask)
        if box is None or score < self.config.lost_threshold:
            return TrackResult(np.zeros(shape, bool), score, None, None, TrackState.LOST,
                               {**record.timings, "total": time.perf_counter() - start})
        if record.polygon is not None:
            # OpenCV's contour points are pixel centres; the project's boxes are in pixel-edge coordinates.
            rotated = polygon_to_rotated_box(record.polygon + 0.5)
        else:
            # The official fallback: the state's own box (before the clamp), here clipped to the frame.
            x, y = record.res_pos - record.res_sz / 2
            fallback = clip_box(Box(float(x), float(y), float(record.res_sz[0]), float(record.res_sz[1])), shape)
            rotated = box_to_rotated_box(fallback or box)
        confident = score >= self.config.tracking_threshold and record.polygon is not None
        state = TrackState.TRACKING if confident else TrackState.UNCERTAIN
        return TrackResult(mask, score, box, rotated, state, {**record.timings, "total": time.perf_counter() - start})
