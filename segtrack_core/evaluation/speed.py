"""Per-frame latency (`segtrack bench`) of a tracker on a real sequence resized to a given resolution.

End to end is the wall time around ``track()``; stages come from ``TrackResult.timings``. Warm-up
frames are excluded. Frames are decoded and resized before timing starts, and played forwards then
backwards (ping-pong) when more frames are needed than the sequence has, so the motion stays continuous.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

import cv2
import numpy as np

from ..geometry import mask_to_box
from ..io import DataError
from ..trackers.base import Tracker
from ..types import Box
from .datasets import load_davis


@dataclass
class LatencyStats:
    name: str
    samples: int
    median_ms: float
    p90_ms: float
    fps: float  # 1 / mean latency

    @classmethod
    def from_seconds(cls, name: str, seconds: List[float]) -> "LatencyStats":
        values = np.asarray(seconds, dtype=np.float64)
        mean = float(values.mean())
        return cls(name, int(values.size), float(np.median(values)) * 1e3,
                   float(np.percentile(values, 90)) * 1e3, 1.0 / mean if mean > 0 else float("inf"))


@dataclass
class BenchResult:
    backend: str
    width: int
    height: int
    frames: int
    warmup: int
    end_to_end: LatencyStats
    stages: List[LatencyStats] = field(default_factory=list)


def load_bench_frames(sequence_dir: Path, width: int, height: int) -> Tuple[List[np.ndarray], Box]:
    """Frames of a DAVIS sequence folder resized to width x height, and the frame-0 box from its mask."""
    sequence_dir = Path(sequence_dir)
    if width < 16 or height < 16:
        raise DataError(f"benchmark resolution {width}x{height} is too small")
    (sequence,) = load_davis(sequence_dir.parent, [sequence_dir.name])
    frames = []
    for path in sequence.frame_paths:
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise DataError(f"cannot decode {path}")
        shrink = width * height < frame.shape[0] * frame.shape[1]
        frames.append(cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR))
    mask = cv2.resize(sequence.gt_mask(0).astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    box = mask_to_box(mask)
    if box is None:
        raise DataError(f"{sequence_dir}: first mask is empty at {width}x{height}")
    return frames, box


def ping_pong(count: int, needed: int) -> List[int]:
    """Frame indices 1, 2, ..., count-1, count-2, ..., 0, 1, ... of length ``needed``."""
    if count < 2:
        return [0] * needed
    cycle = list(range(1, count)) + list(range(count - 2, -1, -1))
    return [cycle[i % len(cycle)] for i in range(needed)]


def run_benchmark(tracker: Tracker, frames: List[np.ndarray], init_box: Box, n_frames: int = 100,
                  warmup: int = 5) -> BenchResult:
    """Initialise on frames[0] and time ``warmup + n_frames`` track() calls; warm-up calls are dropped."""
    if n_frames < 1 or warmup < 0:
        raise ValueError(f"need frames >= 1 and warmup >= 0, got {n_frames} and {warmup}")
    tracker.reset()
    tracker.initialize(frames[0], init_box)
    end_to_end: List[float] = []
    stages: Dict[str, List[float]] = {}
    for step, index in enumerate(ping_pong(len(frames), warmup + n_frames)):
        start = time.perf_counter()
        result = tracker.track(frames[index])
        elapsed = time.perf_counter() - start
        if step < warmup:
            continue
        end_to_end.append(elapsed)
        for stage, seconds in result.timings.items():
            stages.setdefault(stage, []).append(seconds)
    height, width = frames[0].shape[:2]
    return BenchResult(
        backend=getattr(tracker, "name", type(tracker).__name__), width=width, height=height,
        frames=n_frames, warmup=warmup, end_to_end=LatencyStats.from_seconds("end_to_end", end_to_end),
        stages=[LatencyStats.from_seconds(name, values) for name, values in stages.items()],
    )


def format_bench(result: BenchResult, device: str) -> str:
    """Table of stage and end-to-end latency for one backend."""
    lines = [f"{result.backend} on {device}, {result.width}x{result.height}, "
             f"{result.frames} frames after {result.warmup} warm-up",
             f"  {'stage':<20} {'median ms':>10} {'p90 ms':>10} {'fps':>9}"]
    for stats in [*result.stages, result.end_to_end]:
        lines.append(f"  {stats.name:<20} {stats.median_ms:>10.2f} {stats.p90_ms:>10.2f} {stats.fps:>9.1f}")
    return "\n".join(lines)
