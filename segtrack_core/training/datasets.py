"""Training material on disk: video sets and image/instance-mask sets under one data root.

- video set: ``<root>/<set>/<clip>/frames/00000.jpg`` + ``masks/00000.png`` (0/255; an absent object is
  all zero), the DAVIS layout of ``evaluation.datasets``;
- image set: ``<root>/<set>/images/NAME.jpg`` + ``masks/NAME_k.png`` (k = 0 .. n_masks-1) listed in
  ``<root>/<set>/index.tsv`` (columns name, width, height, n_masks, source).

``discover`` recognises each subfolder's layout; only paths are read here, images are decoded per pair.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ..evaluation.datasets import DavisSequence
from ..io import DataError

# The DAVIS 2016 clips held out of training for validation (the tracker's own development set lives
# elsewhere and is never read for training).
DEFAULT_VAL_CLIPS = ("bmx-bumps", "dance-jump", "hockey", "kite-walk", "mallard-water")
# Machine-made masks (human_seg) are noisier than annotated ones; the seven schoolgirls objects share one
# low-resolution video. Both are sampled less than their size alone would give.
DEFAULT_SET_WEIGHTS = {"human_seg": 0.25, "davis17_schoolgirls": 0.5}
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Clip:
    set_name: str
    name: str
    frames: Tuple[Path, ...]
    masks: Tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class StillImage:
    set_name: str
    name: str
    image: Path
    masks: Tuple[Path, ...]  # one file per instance


@dataclass
class TrainingData:
    clips: List[Clip] = field(default_factory=list)
    images: List[StillImage] = field(default_factory=list)
    set_weights: Dict[str, float] = field(default_factory=dict)
    sets: Dict[str, str] = field(default_factory=dict)  # set name -> "video" | "images"

    def weight(self, set_name: str) -> float:
        return self.set_weights.get(set_name, 1.0)

    def split(self, val_clips: Sequence[str]) -> Tuple["TrainingData", List[Clip]]:
        """(training material without the named clips, the named clips). A name is a clip name or
        ``set/clip``; every name must match a clip."""
        wanted = set(val_clips)
        val = [c for c in self.clips if c.name in wanted or f"{c.set_name}/{c.name}" in wanted]
        found = {c.name for c in val} | {f"{c.set_name}/{c.name}" for c in val}
        absent = sorted(wanted - found)
        if absent:
            raise DataError(f"validation clip(s) {absent} not found among the video clips "
                            f"(choose others with --val-clips, or --val-clips '' for none)")
        train = TrainingData([c for c in self.clips if c not in val], list(self.images), dict(self.set_weights),
                             dict(self.sets))
        return train, val


def _is_image_set(folder: Path) -> bool:
    return (folder / "images").is_dir() and (folder / "masks").is_dir() and (folder / "index.tsv").is_file()


def _video_clips(folder: Path, set_name: str) -> List[Clip]:
    clips = []
    for child in sorted(p for p in folder.iterdir() if p.is_dir()):
        if DavisSequence.matches(child):
            seq = DavisSequence.load(child)
            clips.append(Clip(set_name, seq.name, tuple(seq.frame_paths), tuple(seq.mask_paths)))
    return clips


def _image_set(folder: Path, set_name: str) -> List[StillImage]:
    index = folder / "index.tsv"
    try:
        rows = list(csv.DictReader(index.read_text().splitlines(), delimiter="\t"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {index}: {exc}") from exc
    if rows and not {"name", "n_masks"} <= set(rows[0]):
        raise DataError(f"{index}: needs columns name and n_masks, has {sorted(rows[0])}")
    images = []
    for row in rows:
        name = row["name"]
        try:
            count = int(row["n_masks"])
        except (TypeError, ValueError) as exc:
            raise DataError(f"{index}: n_masks of {name!r} is not an integer: {row['n_masks']!r}") from exc
        image = next((folder / "images" / f"{name}{s}" for s in _IMAGE_SUFFIXES
                      if (folder / "images" / f"{name}{s}").is_file()), None)
        if image is None:
            raise DataError(f"{folder}/images: no image file for {name!r} listed in {index}")
        masks = tuple(folder / "masks" / f"{name}_{k}.png" for k in range(count))
        absent = [m.name for m in masks if not m.is_file()]
        if absent:
            raise DataError(f"{folder}/masks: {absent[:3]} listed in {index} are missing")
        if masks:
            images.append(StillImage(set_name, name, image, masks))
    return images


def discover(root: Path | str, set_weights: Optional[Mapping[str, float]] = None) -> TrainingData:
    """Every video set and image set directly under ``root`` (or ``root`` itself if it is one set)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"training data root {root} does not exist or is not a folder")
    data = TrainingData(set_weights=dict(DEFAULT_SET_WEIGHTS if set_weights is None else set_weights))
    for folder in [root] + sorted(p for p in root.iterdir() if p.is_dir()):
        name = folder.name
        if _is_image_set(folder):
            images = _image_set(folder, name)
            if images:
                data.images.extend(images)
                data.sets[name] = "images"
        else:
            clips = _video_clips(folder, name)
            if clips:
                data.clips.extend(clips)
                data.sets[name] = "video"
    bad = {k: v for k, v in data.set_weights.items() if not v >= 0}
    if bad:
        raise DataError(f"set weights must be >= 0, got {bad}")
    if not data.clips and not data.images:
        raise DataError(f"no training sets under {root}: expected subfolders holding video clips "
                        f"(<set>/<clip>/frames/*.jpg + masks/*.png) or image sets "
                        f"(<set>/images/, <set>/masks/NAME_k.png, <set>/index.tsv)")
    return data
