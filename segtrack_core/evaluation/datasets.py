"""Annotated sequences on disk, one class per folder layout, and ``discover_sequences`` over all of them.

A layout class says how to recognise its folder (``matches``), how to load it (``load``) and which scoring
protocol its ground truth calls for (``protocol``, a name in ``protocols.PROTOCOLS``). Adding a layout is
adding a class here and listing it in ``LAYOUTS``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, List, Optional, Sequence, Union

import numpy as np

from ..io import DataError, list_images, read_mask


@dataclass
class DavisSequence:
    """DAVIS layout: ROOT/<name>/frames/*.jpg and masks/*.png (same stems, 0/255)."""

    layout: ClassVar[str] = "davis"
    protocol: ClassVar[str] = "davis"

    name: str
    frame_paths: List[Path]
    mask_paths: List[Path]

    def __len__(self) -> int:
        return len(self.frame_paths)

    def gt_mask(self, index: int) -> np.ndarray:
        return read_mask(self.mask_paths[index])

    @staticmethod
    def matches(folder: Path) -> bool:
        return (folder / "frames").is_dir() and (folder / "masks").is_dir()

    @classmethod
    def load(cls, folder: Path, name: Optional[str] = None) -> "DavisSequence":
        """The sequence in ``folder``, frames matched to masks by stem; named ``name`` or the folder's name."""
        frames_dir, masks_dir = folder / "frames", folder / "masks"
        if not frames_dir.is_dir() or not masks_dir.is_dir():
            raise DataError(f"{folder} is not a DAVIS sequence (needs frames/ and masks/)")
        frames = list_images(frames_dir)
        masks_by_stem = {p.stem: p for p in list_images(masks_dir)}
        missing = [f.name for f in frames if f.stem not in masks_by_stem]
        if not frames or missing:
            raise DataError(f"{folder}: {len(frames)} frames, masks missing for {missing[:5]}")
        return cls(name or folder.name, frames, [masks_by_stem[f.stem] for f in frames])


@dataclass
class VotSequence:
    """VOT layout: ROOT/<name>/imgs/*.jpg (or color/) and groundtruth.txt, one region per frame.

    ``polygons`` is Nx8 (x1,y1,...,x4,y4); a 4-value x,y,w,h line becomes its box's corners; a frame
    without a valid region (NaN values) has a NaN row and is not scored.
    """

    layout: ClassVar[str] = "vot"
    protocol: ClassVar[str] = "vot"

    name: str
    frame_paths: List[Path]
    polygons: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return len(self.frame_paths)

    @staticmethod
    def matches(folder: Path) -> bool:
        return (folder / "groundtruth.txt").is_file() and any((folder / d).is_dir() for d in ("imgs", "color"))

    @classmethod
    def load(cls, folder: Path, name: Optional[str] = None) -> "VotSequence":
        gt_file = folder / "groundtruth.txt"
        image_dir = next((folder / d for d in ("imgs", "color") if (folder / d).is_dir()), folder)
        frames = list_images(image_dir) if folder.is_dir() else []
        if not gt_file.is_file() or not frames:
            raise DataError(f"{folder} is not a VOT sequence (needs imgs/ and groundtruth.txt)")
        polygons = parse_vot_groundtruth(gt_file.read_text())
        if len(polygons) != len(frames):
            raise DataError(f"{folder}: {len(frames)} frames but {len(polygons)} groundtruth lines")
        return cls(name or folder.name, frames, polygons)


AnnotatedSequence = Union[DavisSequence, VotSequence]

# Checked in this order: a folder with masks/ and a groundtruth.txt is a DAVIS sequence.
LAYOUTS = (DavisSequence, VotSequence)
LAYOUT_NAMES = tuple(layout.layout for layout in LAYOUTS)


def parse_vot_groundtruth(text: str) -> np.ndarray:
    """Nx8 float array of polygons from groundtruth.txt text (8-value polygons or 4-value boxes)."""
    rows = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            values = [float(v) for v in line.replace("\t", ",").replace(" ", ",").split(",") if v]
        except ValueError:
            raise DataError(f"groundtruth line {line_no}: not numbers: {line!r}") from None
        if len(values) == 4:
            x, y, w, h = values
            values = [x, y, x + w, y, x + w, y + h, x, y + h]
        elif len(values) != 8:
            raise DataError(f"groundtruth line {line_no}: expected 4 or 8 values, got {len(values)}")
        rows.append(values)
    return np.array(rows, dtype=np.float64).reshape(-1, 8)


def _sequence_dirs(root: Path, names: Optional[Sequence[str]]) -> List[Path]:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder not found: {root}")
    if names:
        dirs = [root / n for n in names]
        missing = [d.name for d in dirs if not d.is_dir()]
        if missing:
            raise DataError(f"sequence(s) not found in {root}: {', '.join(missing)}")
        return dirs
    return sorted(d for d in root.iterdir() if d.is_dir())


def _load_layout(layout: type, root: str | os.PathLike, names: Optional[Sequence[str]], description: str) -> list:
    sequences = []
    for seq_dir in _sequence_dirs(Path(root), names):
        if names or layout.matches(seq_dir):
            sequences.append(layout.load(seq_dir))
    if not sequences:
        raise DataError(f"no {layout.layout.upper()} sequences ({description}) in {root}")
    return sequences


def load_davis(root: str | os.PathLike, names: Optional[Sequence[str]] = None) -> List[DavisSequence]:
    """DAVIS sequences under ``root`` (all, or those in ``names``), frames matched to masks by stem."""
    return _load_layout(DavisSequence, root, names, "<seq>/frames, <seq>/masks")


def load_vot(root: str | os.PathLike, names: Optional[Sequence[str]] = None) -> List[VotSequence]:
    """VOT sequences under ``root`` (all, or those in ``names``)."""
    return _load_layout(VotSequence, root, names, "<seq>/imgs, <seq>/groundtruth.txt")


def discover_sequences(root: str | os.PathLike, names: Optional[Sequence[str]] = None, layout: str = "auto",
                       max_depth: int = 3) -> List[AnnotatedSequence]:
    """Every sequence below ``root`` whatever its layout, named by its path relative to ``root``.

    A folder with frames/ and masks/ is a DAVIS sequence (masks win over a groundtruth.txt beside
    them); one with groundtruth.txt and imgs/ (or color/) a VOT sequence. ``layout`` = davis or vot
    keeps one kind. ``names`` keeps the sequences whose relative name equals, or starts with the folder
    path of, one of them (``boxes`` keeps every boxes/* sequence).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder not found: {root}")
    if layout not in ("auto", *LAYOUT_NAMES):
        raise DataError(f"layout must be auto, {' or '.join(LAYOUT_NAMES)}, got {layout!r}")
    found: List[tuple[str, Path, type]] = []

    def visit(folder: Path, depth: int) -> None:
        kind = next((cls for cls in LAYOUTS if cls.matches(folder)), None)
        if kind is not None:
            if layout in ("auto", kind.layout):
                found.append((folder.relative_to(root).as_posix() if folder != root else folder.name, folder, kind))
            return
        if depth < max_depth:
            for child in sorted(d for d in folder.iterdir() if d.is_dir()):
                visit(child, depth + 1)

    visit(root, 0)
    if names:
        wanted = [n.strip("/") for n in names]
        unmatched = [w for w in wanted if not any(name == w or name.startswith(w + "/") for name, _, _ in found)]
        if unmatched:
            raise DataError(f"sequence(s) not found in {root}: {', '.join(unmatched)}")
        found = [f for f in found if any(f[0] == w or f[0].startswith(w + "/") for w in wanted)]
    if not found:
        raise DataError(f"no sequences (<seq>/frames + <seq>/masks, or <seq>/imgs + <seq>/groundtruth.txt) "
                        f"in {root}")
    return [kind.load(folder, name) for name, folder, kind in found]


def default_data_root() -> Path:
    """$SEGTRACK_DATA, else the shared data folder beside the repository (<repo>/../shared/data)."""
    env = os.environ.get("SEGTRACK_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data"
