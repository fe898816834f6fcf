"""Scoring protocols: how a sequence's tracker is started and how its saved predictions are scored.

- DAVIS: initialise on frame 0 from the mask, its enclosing box or its minimum-area rotated box; score
  J and F on every later frame.
- VOT (box sequences): initialise on the first frame from the polygon's enclosing box, its minimum-area
  rotated box or the filled polygon; on every later frame, without re-initialisation, score the IoU of
  the predicted axis-aligned box with the ground truth's enclosing box (mean IoU, success AUC, share of
  frames off target, i.e. IoU < 0.1), and the IoU of the predicted rotated box with the ground-truth
  polygon bounded by the image (``poly_IoU``, the VOT measure). A lost target scores 0.

A sequence names its protocol (``sequence.protocol``, set by its layout in ``datasets``); adding a protocol
is adding a class here and listing it in ``PROTOCOLS``. Protocols score predictions read back from disk
(``predictions.Prediction``), never a live tracker, so a run can be re-scored without tracking again.
"""

from __future__ import annotations

import abc
from typing import ClassVar, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import metrics
from ..geometry import (fill_polygon, mask_to_box, mask_to_rotated_box, polygon_to_box, polygon_to_rotated_box,
                        rotated_box_corners)
from ..io import DataError
from ..types import MaskTarget, Target
from .predictions import Prediction

INIT_MODES = ("box", "mask", "rotated")

Measures = Dict[str, Optional[float]]


class Protocol(abc.ABC):
    """One scoring protocol. ``frame_keys``: what ``score_frame`` measures per frame; ``metric_keys``: what
    ``summarize`` gives per sequence (means over sequences, except ``summed_keys``, which add up);
    ``table_columns``: the headline and second measure of the text report; ``shows_off_target``: whether
    its ``off_target`` share goes in the report's off% column."""

    name: ClassVar[str]
    frame_keys: ClassVar[Tuple[str, ...]]
    metric_keys: ClassVar[Tuple[str, ...]]
    summed_keys: ClassVar[Tuple[str, ...]] = ()
    table_columns: ClassVar[Tuple[str, str]]
    shows_off_target: ClassVar[bool] = False

    @abc.abstractmethod
    def init_target(self, sequence, shape: Tuple[int, int], init: str) -> Target:
        """The target every tracker starts from on frame 0 (``init``: one of INIT_MODES); ``shape`` = (H, W)."""

    @abc.abstractmethod
    def score_frame(self, sequence, prediction: Prediction, shape: Tuple[int, int]) -> Measures:
        """Measures (``frame_keys``; None = not scored) of one saved prediction against ``sequence``'s
        ground truth for frame ``prediction.frame``."""

    @abc.abstractmethod
    def summarize(self, measures: Sequence[Measures]) -> Dict[str, float]:
        """``metric_keys`` of one sequence from its frames' measures."""

    @staticmethod
    def check_init(init: str) -> None:
        if init not in INIT_MODES:
            raise ValueError(f"init must be one of {INIT_MODES}, got {init!r}")


class DavisProtocol(Protocol):
    name = "davis"
    frame_keys = ("j", "f")
    metric_keys = ("J", "F", "J&F")
    table_columns = ("J", "F")

    def init_target(self, sequence, shape: Tuple[int, int], init: str) -> Target:
        self.check_init(init)
        mask = sequence.gt_mask(0)
        if init == "mask":
            return MaskTarget(mask)
        if init == "rotated":
            return mask_to_rotated_box(mask)
        return mask_to_box(mask)

    def score_frame(self, sequence, prediction: Prediction, shape: Tuple[int, int]) -> Measures:
        gt_mask = sequence.gt_mask(prediction.frame)
        mask = prediction.mask
        return {"j": metrics.region_similarity(mask, gt_mask), "f": metrics.contour_accuracy(mask, gt_mask)}

    def summarize(self, measures: Sequence[Measures]) -> Dict[str, float]:
        j = mean_present([m.get("j") for m in measures])
        f = mean_present([m.get("f") for m in measures])
        return {"J": j, "F": f, "J&F": (j + f) / 2.0}


class VotProtocol(Protocol):
    name = "vot"
    frame_keys = ("iou", "poly_iou")  # axis-aligned box IoU; rotated box vs ground-truth polygon
    metric_keys = ("IoU", "AUC", "off_target", "poly_IoU", "failures")
    summed_keys = ("failures",)
    table_columns = ("IoU", "AUC")
    shows_off_target = True

    def init_target(self, sequence, shape: Tuple[int, int], init: str) -> Target:
        self.check_init(init)
        polygon = sequence.polygons[0]
        if not np.all(np.isfinite(polygon)):
            raise DataError(f"{sequence.name}: no ground-truth region on the first frame")
        if init == "mask":
            return MaskTarget(fill_polygon(polygon, shape))
        if init == "rotated":
            return polygon_to_rotated_box(polygon)
        return polygon_to_box(polygon)

    def score_frame(self, sequence, prediction: Prediction, shape: Tuple[int, int]) -> Measures:
        gt_polygon = sequence.polygons[prediction.frame]
        if not np.all(np.isfinite(gt_polygon)):
            return {}  # no ground truth on this frame: not scored
        rotated, box = prediction.rotated_box, prediction.box
        poly_iou = 0.0 if rotated is None else metrics.polygon_iou(
            rotated_box_corners(rotated), gt_polygon, bounds=(shape[1], shape[0]))
        iou = 0.0 if box is None else metrics.box_iou(box.as_tuple(), polygon_to_box(gt_polygon).as_tuple())
        return {"iou": iou, "poly_iou": poly_iou}

    def summarize(self, measures: Sequence[Measures]) -> Dict[str, float]:
        ious = np.array([m["iou"] for m in measures if m.get("iou") is not None], dtype=np.float64)
        return {"IoU": mean_present(list(ious)), "AUC": metrics.success_auc(ious),
                "off_target": metrics.off_target_share(ious),
                "poly_IoU": mean_present([m.get("poly_iou") for m in measures]),
                "failures": int((ious <= 0.0).sum())}


# In report order (a report lists DAVIS results before VOT results).
PROTOCOLS: Dict[str, Protocol] = {p.name: p for p in (DavisProtocol(), VotProtocol())}

# Every per-frame measure of every protocol, in protocol order (the columns of frames.csv).
FRAME_KEYS: Tuple[str, ...] = tuple(k for p in PROTOCOLS.values() for k in p.frame_keys)


def protocol_for(sequence) -> Protocol:
    """The protocol a sequence's ground truth calls for (its layout's ``protocol``)."""
    return get_protocol(sequence.protocol)


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise DataError(f"unknown scoring protocol {name!r}; known: {', '.join(PROTOCOLS)}") from None


def mean_present(values: Sequence[Optional[float]]) -> float:
    """Mean of the values that are not None; NaN when there are none."""
    present: List[float] = [v for v in values if v is not None]
    return float(np.mean(present)) if present else float("nan")
