"""Raw tracker output saved per sequence, so that scoring never needs the tracker again.

An evaluation folder OUT holds::

    OUT/runs.json                                   init mode, data root, sequences (in order), runs (in order)
    OUT/<backend>/<parameter set>/<sequence>/
        predictions.csv    frame,state,score,time,box_x,box_y,box_w,box_h,rbox_cx,rbox_cy,rbox_w,rbox_h,rbox_angle
        masks/<frame:05d>.png                       the predicted mask, 0/255 (as DAVIS ground truth)
        sequence.json      protocol, image size, init time, skipped frames; written last (a sequence
                           without it did not finish)

Numbers are written with ``repr`` (shortest exact form), so a re-read prediction is bit for bit the one
the tracker returned and re-scoring reproduces the run's figures exactly. A lost frame leaves its box
cells empty. Frame 0 (initialisation) has no row.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from ..io import DataError, read_mask, write_mask_png
from ..types import Box, RotatedBox, TrackResult

MANIFEST = "runs.json"
PREDICTIONS = "predictions.csv"
SEQUENCE_INFO = "sequence.json"
MASKS = "masks"
COLUMNS = ("frame", "state", "score", "time", "box_x", "box_y", "box_w", "box_h",
           "rbox_cx", "rbox_cy", "rbox_w", "rbox_h", "rbox_angle")


@dataclass
class Prediction:
    """One tracked frame as saved: state, score, seconds in track(), boxes (None when lost), mask (read on
    first use)."""

    frame: int
    state: str
    score: float
    time: float
    box: Optional[Box]
    rotated_box: Optional[RotatedBox]
    mask_path: Optional[Path] = field(default=None, repr=False)

    @cached_property
    def mask(self) -> np.ndarray:
        if self.mask_path is None:
            raise DataError(f"frame {self.frame}: no mask was saved")
        return read_mask(self.mask_path)


@dataclass
class SavedSequence:
    """A finished sequence's predictions and its sequence.json."""

    name: str
    protocol: str
    image_size: Tuple[int, int]  # (W, H)
    init_time: float
    skipped_frames: List[int]
    predictions: List[Prediction]

    @property
    def shape(self) -> Tuple[int, int]:
        return (self.image_size[1], self.image_size[0])


class SequenceWriter:
    """Writes one tracker's predictions for one sequence into ``folder`` as they come."""

    def __init__(self, folder: Path, sequence: str, protocol: str) -> None:
        self.folder = Path(folder)
        self.sequence, self.protocol = sequence, protocol
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / SEQUENCE_INFO).unlink(missing_ok=True)  # unfinished until close()
        self._file = (self.folder / PREDICTIONS).open("w", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow(COLUMNS)
        self.init_time = 0.0

    def write(self, frame: int, result: TrackResult, seconds: float) -> None:
        box = result.box.as_tuple() if result.box is not None else ("",) * 4
        rotated = result.rotated_box.as_tuple() if result.rotated_box is not None else ("",) * 5
        self._csv.writerow([frame, result.state.value, *(_number(v) for v in (result.score, seconds, *box, *rotated))])
        write_mask_png(self.folder / MASKS, frame, result.mask)

    def close(self, image_size: Tuple[int, int], skipped_frames: List[int]) -> None:
        """Finish the sequence: flush the predictions and write sequence.json."""
        self._file.close()
        info = {"sequence": self.sequence, "protocol": self.protocol, "image_size": list(image_size),
                "init_time": self.init_time, "skipped_frames": list(skipped_frames)}
        (self.folder / SEQUENCE_INFO).write_text(json.dumps(info, indent=2) + "\n")

    def abort(self) -> None:
        self._file.close()


def read_sequence(folder: Path) -> SavedSequence:
    """A finished sequence's saved predictions (masks are read lazily)."""
    folder = Path(folder)
    info_path = folder / SEQUENCE_INFO
    if not info_path.is_file():
        raise DataError(f"no finished predictions in {folder} (no {SEQUENCE_INFO}: the run stopped early?)")
    info = json.loads(info_path.read_text())
    predictions = []
    with (folder / PREDICTIONS).open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(header) != COLUMNS:
            raise DataError(f"{folder / PREDICTIONS}: expected the columns {','.join(COLUMNS)}")
        for row in reader:
            frame = int(row[0])
            box = Box(*map(float, row[4:8])) if row[4] else None
            rotated = RotatedBox(*map(float, row[8:13])) if row[8] else None
            mask_path = folder / MASKS / f"{frame:05d}.png"
            predictions.append(Prediction(frame, row[1], float(row[2]), float(row[3]), box, rotated,
                                          mask_path if mask_path.is_file() else None))
    width, height = info["image_size"]
    return SavedSequence(info["sequence"], info["protocol"], (int(width), int(height)), float(info["init_time"]),
                         [int(i) for i in info["skipped_frames"]], predictions)


def write_manifest(out_dir: Path, manifest: dict) -> Path:
    path = Path(out_dir) / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def read_manifest(out_dir: Path) -> dict:
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise DataError(f"no saved evaluation in {out_dir} (no {MANIFEST}; see segtrack eval --out)")
    return json.loads(path.read_text())


def _number(value: object) -> str:
    return value if value == "" else repr(float(value))
