"""Run trackers over annotated sequences and score them (DAVIS: J and F; VOT: polygon IoU).

Protocols (see shared/data/README.md):
- DAVIS: initialise on frame 0 from the mask, its enclosing box or its minimum-area rotated box; score
  J and F on every later frame.
- VOT (box sequences): initialise on the first frame from the polygon's enclosing box, its minimum-area
  rotated box or the filled polygon; on every later frame, without re-initialisation, score the IoU of
  the predicted axis-aligned box with the ground truth's enclosing box (mean IoU, success AUC, share of
  frames off target, i.e. IoU < 0.1), and the IoU of the predicted rotated box with the ground-truth
  polygon bounded by the image (``poly_IoU``, the VOT measure). A lost target scores 0.
One evaluation may mix both layouts; means are taken per protocol. Several trackers (backend and
baseline) run in lockstep on the same decoded frames.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from . import metrics
from .config import to_dict
from .geometry import (fill_polygon, mask_to_box, mask_to_rotated_box, polygon_to_box,
                       polygon_to_rotated_box, rotated_box_corners)
from .io import DataError, DavisSequence, FrameSource, VotSequence
from .trackers.base import Tracker
from .types import MaskTarget, Target, TrackResult

log = logging.getLogger(__name__)

INIT_MODES = ("box", "mask", "rotated")
PROTOCOLS = ("davis", "vot")


@dataclass
class FrameRecord:
    frame: int
    score: float
    state: str
    time: float  # seconds in track()
    j: Optional[float] = None
    f: Optional[float] = None
    iou: Optional[float] = None  # axis-aligned box IoU
    poly_iou: Optional[float] = None  # rotated box vs ground-truth polygon


@dataclass
class SequenceResult:
    sequence: str
    protocol: str
    frames: List[FrameRecord] = field(default_factory=list)
    init_time: float = 0.0
    skipped_frames: List[int] = field(default_factory=list)

    def summary(self) -> Dict[str, float]:
        total_time = sum(r.time for r in self.frames)
        out: Dict[str, float] = {"frames": len(self.frames),
                                 "fps": len(self.frames) / total_time if total_time > 0 else 0.0}
        if self.protocol == "davis":
            out["J"] = _mean([r.j for r in self.frames])
            out["F"] = _mean([r.f for r in self.frames])
            out["J&F"] = (out["J"] + out["F"]) / 2.0
        else:
            ious = np.array([r.iou for r in self.frames if r.iou is not None], dtype=np.float64)
            out["IoU"] = _mean(list(ious))
            out["AUC"] = metrics.success_auc(ious)
            out["off_target"] = metrics.off_target_share(ious)
            out["poly_IoU"] = _mean([r.poly_iou for r in self.frames])
            out["failures"] = int((ious <= 0.0).sum())
        out["mean_score"] = _mean([r.score for r in self.frames])
        return out


@dataclass
class BackendResults:
    backend: str
    config: dict
    sequences: List[SequenceResult] = field(default_factory=list)

    def summary(self) -> Dict[str, Dict[str, float]]:
        """Per protocol: means over sequences of the per-sequence means (DAVIS/VOT convention); frames and
        failures summed; fps = all frames / all tracking time."""
        out: Dict[str, Dict[str, float]] = {}
        for protocol in PROTOCOLS:
            sequences = [s for s in self.sequences if s.protocol == protocol]
            if not sequences:
                continue
            per_seq = [s.summary() for s in sequences]
            merged: Dict[str, float] = {}
            for key in per_seq[0]:
                values = [p[key] for p in per_seq]
                merged[key] = float(sum(values)) if key in ("frames", "failures") else _mean(values)
            total_time = sum(r.time for s in sequences for r in s.frames)
            merged["fps"] = merged["frames"] / total_time if total_time > 0 else 0.0
            out[protocol] = merged
        return out


@dataclass
class EvaluationReport:
    init: str
    root: str
    results: List[BackendResults]

    def to_dict(self) -> dict:
        return {
            "init": self.init,
            "root": self.root,
            "backends": [
                {
                    "backend": r.backend,
                    "config": r.config,
                    "summary": r.summary(),
                    "sequences": [
                        {"sequence": s.sequence, "summary": s.summary(), "init_time": s.init_time,
                         "skipped_frames": s.skipped_frames, "frames": [dataclasses.asdict(f) for f in s.frames]}
                        for s in r.sequences
                    ],
                }
                for r in self.results
            ],
        }

    def save(self, out_dir: Union[str, Path]) -> List[Path]:
        """Write results.json, sequences.csv (per sequence and mean) and frames.csv; returns the paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        json_path = out / "results.json"
        json_path.write_text(json.dumps(_nan_to_none(self.to_dict()), indent=2, allow_nan=False))
        keys = [k for protocol in self.protocols for k in metric_keys(protocol) if k not in ("fps", "frames")]
        keys = list(dict.fromkeys(keys)) + ["fps", "frames"]
        seq_path = out / "sequences.csv"
        with seq_path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["backend", "protocol", "sequence", *keys])
            for r in self.results:
                for s in r.sequences:
                    summary = s.summary()
                    writer.writerow([r.backend, s.protocol, s.sequence, *(_fmt(summary.get(k, "")) for k in keys)])
                for protocol, summary in r.summary().items():
                    writer.writerow([r.backend, protocol, "mean", *(_fmt(summary.get(k, "")) for k in keys)])
        frames_path = out / "frames.csv"
        with frames_path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            columns = [f.name for f in dataclasses.fields(FrameRecord)]
            writer.writerow(["backend", "sequence", *columns])
            for r in self.results:
                for s in r.sequences:
                    for rec in s.frames:
                        writer.writerow([r.backend, s.sequence, *(_fmt(getattr(rec, c)) for c in columns)])
        return [json_path, seq_path, frames_path]


    @property
    def protocols(self) -> List[str]:
        present = {s.protocol for r in self.results for s in r.sequences}
        return [p for p in PROTOCOLS if p in present]


def metric_keys(protocol: str) -> List[str]:
    if protocol == "davis":
        return ["J", "F", "J&F", "mean_score", "fps", "frames"]
    return ["IoU", "AUC", "off_target", "poly_IoU", "failures", "mean_score", "fps", "frames"]


def davis_init_target(mask: np.ndarray, init: str) -> Target:
    if init == "mask":
        return MaskTarget(mask)
    if init == "rotated":
        return mask_to_rotated_box(mask)
    return mask_to_box(mask)


def vot_init_target(polygon: np.ndarray, init: str, shape: tuple[int, int]) -> Target:
    if init == "mask":
        return MaskTarget(fill_polygon(polygon, shape))
    if init == "rotated":
        return polygon_to_rotated_box(polygon)
    return polygon_to_box(polygon)


def predicted_polygon(result: TrackResult) -> Optional[np.ndarray]:
    """The rotated box's corners, or None (target lost)."""
    return rotated_box_corners(result.rotated_box) if result.rotated_box is not None else None


def evaluate_sequence(sequence: Union[DavisSequence, VotSequence], trackers: Dict[str, Tracker],
                      init: str = "box", on_frame: Optional[Callable[[], None]] = None
                      ) -> Dict[str, SequenceResult]:
    """Run every tracker over one sequence in lockstep; returns backend name -> SequenceResult."""
    if init not in INIT_MODES:
        raise ValueError(f"init must be one of {INIT_MODES}, got {init!r}")
    protocol = "davis" if isinstance(sequence, DavisSequence) else "vot"
    results = {name: SequenceResult(sequence.name, protocol) for name in trackers}
    source = FrameSource(sequence.frame_paths)
    frames = iter(source)
    first = next(frames, None)
    if first is None or first[0] != 0:
        raise DataError(f"{sequence.name}: first frame {sequence.frame_paths[0]} cannot be read")
    frame0 = first[1]
    shape = frame0.shape[:2]
    if protocol == "davis":
        target = davis_init_target(sequence.gt_mask(0), init)
    else:
        if not np.all(np.isfinite(sequence.polygons[0])):
            raise DataError(f"{sequence.name}: no ground-truth region on the first frame")
        target = vot_init_target(sequence.polygons[0], init, shape)
    for name, tracker in trackers.items():
        tracker.reset()
        start = time.perf_counter()
        tracker.initialize(frame0, target)
        results[name].init_time = time.perf_counter() - start
    for index, frame in frames:
        gt_mask = sequence.gt_mask(index) if protocol == "davis" else None
        gt_polygon = sequence.polygons[index] if protocol == "vot" else None
        for name, tracker in trackers.items():
            start = time.perf_counter()
            result = tracker.track(frame)
            elapsed = time.perf_counter() - start
            record = FrameRecord(index, float(result.score), result.state.value, elapsed)
            if gt_mask is not None:
                record.j = metrics.region_similarity(result.mask, gt_mask)
                record.f = metrics.contour_accuracy(result.mask, gt_mask)
            elif np.all(np.isfinite(gt_polygon)):
                polygon = predicted_polygon(result)
                record.poly_iou = 0.0 if polygon is None else metrics.polygon_iou(
                    polygon, gt_polygon, bounds=(shape[1], shape[0]))
                record.iou = 0.0 if result.box is None else metrics.box_iou(
                    result.box.as_tuple(), polygon_to_box(gt_polygon).as_tuple())
            results[name].frames.append(record)
        if on_frame is not None:
            on_frame()
    for result in results.values():
        result.skipped_frames = [s.index for s in source.skipped]
    return results


def evaluate(sequences: Sequence[Union[DavisSequence, VotSequence]], trackers: Dict[str, Tracker],
             init: str = "box", root: str = "", configs: Optional[Dict[str, dict]] = None,
             on_frame: Optional[Callable[[], None]] = None) -> EvaluationReport:
    """Evaluate every tracker on every sequence; ``trackers`` keeps its order in the report."""
    configs = configs or {}
    by_backend = {name: BackendResults(name, configs.get(name, {})) for name in trackers}
    for sequence in sequences:
        log.info("evaluating %s", sequence.name)
        for name, result in evaluate_sequence(sequence, trackers, init, on_frame).items():
            by_backend[name].sequences.append(result)
    return EvaluationReport(init, root, list(by_backend.values()))


def tracker_config(tracker: Tracker) -> dict:
    """Plain dict of the config a tracker was built with (for saving next to results)."""
    return to_dict(tracker.config)


def _mean(values: Sequence[Optional[float]]) -> float:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else float("nan")


def _nan_to_none(value: object) -> object:
    # NaN (a mean over no frames) is not valid JSON.
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


def _fmt(value: object) -> object:
    return f"{value:.6g}" if isinstance(value, float) else value
