"""Frame sources (video file or folder of images), dataset loaders (DAVIS, VOT) and result writers.

Frames are uint8 HxWx3 BGR. Unreadable frames are reported (logged and listed in ``skipped``) and
skipped, so one corrupt JPEG does not end a run.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from .errors import SegtrackError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class DataError(SegtrackError):
    """An input file, folder or dataset is missing or malformed."""


@dataclass(frozen=True)
class SkippedFrame:
    index: int
    reason: str


def list_images(folder: Path) -> List[Path]:
    """Image files of a folder, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_image(path: Path) -> Optional[np.ndarray]:
    """BGR image, or None if the file cannot be read or decoded."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def read_mask(path: Path) -> np.ndarray:
    """Bool HxW mask from an image file (nonzero = foreground); raises DataError if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"mask file not found: {path}")
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise DataError(f"cannot decode mask image {path}")
    return mask != 0


class FrameSource:
    """Frames of a video file, a folder of images or a list of image files, as (index, frame) pairs.

    ``index`` counts positions in the source (file order or decode order), so a skipped frame leaves a
    gap. Skipped frames are logged, passed to ``on_skip`` and kept in ``skipped``. In a folder, frames
    whose size differs from the first readable frame are skipped too (a tracker needs a fixed size).
    """

    def __init__(self, path: str | os.PathLike | Sequence[Path],
                 on_skip: Optional[Callable[[SkippedFrame], None]] = None):
        self.on_skip = on_skip
        self.skipped: List[SkippedFrame] = []
        self.fps = 0.0
        if isinstance(path, (list, tuple)):  # explicit image files, e.g. a dataset sequence
            self._files = [Path(p) for p in path]
            self.path = self._files[0].parent if self._files else Path()
            if not self._files:
                raise DataError("no frames given")
            return
        self.path = Path(path)
        if self.path.is_dir():
            self._files: Optional[List[Path]] = list_images(self.path)
            if not self._files:
                raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {self.path}")
        elif self.path.is_file():
            self._files = None
            capture = cv2.VideoCapture(str(self.path))
            opened = capture.isOpened()
            self._video_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if opened else 0
            self.fps = capture.get(cv2.CAP_PROP_FPS) if opened else 0.0
            capture.release()
            if not opened:
                raise DataError(f"cannot open video {self.path}")
        else:
            raise DataError(f"input not found: {self.path}")

    @property
    def is_video(self) -> bool:
        return self._files is None

    def __len__(self) -> int:
        """Number of frames in the source (for a video: as the container reports it, may be 0)."""
        return len(self._files) if self._files is not None else max(self._video_frames, 0)

    def __iter__(self) -> Iterator[Tuple[int, np.ndarray]]:
        self.skipped = []
        return self._iter_folder() if self._files is not None else self._iter_video()

    def _skip(self, index: int, reason: str) -> None:
        skipped = SkippedFrame(index, reason)
        self.skipped.append(skipped)
        log.warning("skipping frame %d of %s: %s", index, self.path, reason)
        if self.on_skip is not None:
            self.on_skip(skipped)

    def _iter_folder(self) -> Iterator[Tuple[int, np.ndarray]]:
        size = None
        for index, file in enumerate(self._files):
            frame = read_image(file)
            if frame is None:
                self._skip(index, f"cannot decode {file.name}")
                continue
            if size is None:
                size = frame.shape[:2]
            elif frame.shape[:2] != size:
                self._skip(index, f"{file.name} is {frame.shape[1]}x{frame.shape[0]}, "
                                  f"earlier frames are {size[1]}x{size[0]}")
                continue
            yield index, frame

    def _iter_video(self) -> Iterator[Tuple[int, np.ndarray]]:
        capture = cv2.VideoCapture(str(self.path))
        try:
            index = 0
            while capture.grab():
                ok, frame = capture.retrieve()
                if not ok or frame is None or frame.ndim != 3 or frame.shape[2] != 3:
                    self._skip(index, "decoder returned no image")
                else:
                    yield index, frame
                index += 1
            if self._video_frames > 0 and index < self._video_frames:
                self._skip(index, f"video ended after {index} of {self._video_frames} frames")
        finally:
            capture.release()


# --- datasets ---------------------------------------------------------------------------------------

@dataclass
class DavisSequence:
    """DAVIS layout: ROOT/<name>/frames/*.jpg and masks/*.png (same stems, 0/255)."""

    name: str
    frame_paths: List[Path]
    mask_paths: List[Path]

    def __len__(self) -> int:
        return len(self.frame_paths)

    def gt_mask(self, index: int) -> np.ndarray:
        return read_mask(self.mask_paths[index])


@dataclass
class VotSequence:
    """VOT layout: ROOT/<name>/imgs/*.jpg (or color/) and groundtruth.txt, one region per frame.

    ``polygons`` is Nx8 (x1,y1,...,x4,y4); a 4-value x,y,w,h line becomes its box's corners; a frame
    without a valid region (NaN values) has a NaN row and is not scored.
    """

    name: str
    frame_paths: List[Path]
    polygons: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return len(self.frame_paths)


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


def load_davis(root: str | os.PathLike, names: Optional[Sequence[str]] = None) -> List[DavisSequence]:
    """DAVIS sequences under ``root`` (all, or those in ``names``), frames matched to masks by stem."""
    sequences = []
    for seq_dir in _sequence_dirs(Path(root), names):
        frames_dir, masks_dir = seq_dir / "frames", seq_dir / "masks"
        if not frames_dir.is_dir() or not masks_dir.is_dir():
            if names:
                raise DataError(f"{seq_dir} is not a DAVIS sequence (needs frames/ and masks/)")
            continue
        frames = list_images(frames_dir)
        masks_by_stem = {p.stem: p for p in list_images(masks_dir)}
        missing = [f.name for f in frames if f.stem not in masks_by_stem]
        if not frames or missing:
            raise DataError(f"{seq_dir}: {len(frames)} frames, masks missing for {missing[:5]}")
        sequences.append(DavisSequence(seq_dir.name, frames, [masks_by_stem[f.stem] for f in frames]))
    if not sequences:
        raise DataError(f"no DAVIS sequences (<seq>/frames, <seq>/masks) in {root}")
    return sequences


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


def load_vot(root: str | os.PathLike, names: Optional[Sequence[str]] = None) -> List[VotSequence]:
    """VOT sequences under ``root`` (all, or those in ``names``)."""
    sequences = []
    for seq_dir in _sequence_dirs(Path(root), names):
        gt_file = seq_dir / "groundtruth.txt"
        image_dir = next((seq_dir / d for d in ("imgs", "color") if (seq_dir / d).is_dir()), seq_dir)
        frames = list_images(image_dir)
        if not gt_file.is_file() or not frames:
            if names:
                raise DataError(f"{seq_dir} is not a VOT sequence (needs imgs/ and groundtruth.txt)")
            continue
        polygons = parse_vot_groundtruth(gt_file.read_text())
        if len(polygons) != len(frames):
            raise DataError(f"{seq_dir}: {len(frames)} frames but {len(polygons)} groundtruth lines")
        sequences.append(VotSequence(seq_dir.name, frames, polygons))
    if not sequences:
        raise DataError(f"no VOT sequences (<seq>/imgs, <seq>/groundtruth.txt) in {root}")
    return sequences


def _is_davis_dir(path: Path) -> bool:
    return (path / "frames").is_dir() and (path / "masks").is_dir()


def _is_vot_dir(path: Path) -> bool:
    return (path / "groundtruth.txt").is_file() and any((path / d).is_dir() for d in ("imgs", "color"))


def discover_sequences(root: str | os.PathLike, names: Optional[Sequence[str]] = None, layout: str = "auto",
                       max_depth: int = 3) -> List[DavisSequence | VotSequence]:
    """Every sequence below ``root`` whatever its layout, named by its path relative to ``root``.

    A folder with frames/ and masks/ is a DAVIS sequence (masks win over a groundtruth.txt beside
    them); one with groundtruth.txt and imgs/ (or color/) a VOT sequence. ``layout`` = davis or vot
    keeps one kind. ``names`` keeps the sequences whose relative name equals, or starts with the folder
    path of, one of them (``boxes`` keeps every boxes/* sequence).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder not found: {root}")
    if layout not in ("auto", "davis", "vot"):
        raise DataError(f"layout must be auto, davis or vot, got {layout!r}")
    found: List[tuple[str, Path, str]] = []

    def visit(folder: Path, depth: int) -> None:
        kind = "davis" if _is_davis_dir(folder) else "vot" if _is_vot_dir(folder) else None
        if kind is not None:
            if layout in ("auto", kind):
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
    sequences: List[DavisSequence | VotSequence] = []
    for name, folder, kind in found:
        loader = load_davis if kind == "davis" else load_vot
        (sequence,) = loader(folder.parent, [folder.name])
        sequence.name = name
        sequences.append(sequence)
    return sequences


def default_data_root() -> Path:
    """$SEGTRACK_DATA, else the shared data folder beside the repository (<repo>/../shared/data)."""
    env = os.environ.get("SEGTRACK_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


# --- writers ----------------------------------------------------------------------------------------

class VideoWriter:
    """MP4 (mp4v) writer that opens on the first frame, taking its size from it."""

    def __init__(self, path: str | os.PathLike, fps: float = 25.0):
        self.path = Path(path)
        self.fps = fps if fps and fps > 0 else 25.0
        self._writer: Optional[cv2.VideoWriter] = None
        self._size: Optional[Tuple[int, int]] = None
        self.frames_written = 0

    def write(self, frame: np.ndarray) -> None:
        size = (frame.shape[1], frame.shape[0])
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, size)
            if not self._writer.isOpened():
                self._writer = None
                raise DataError(f"cannot open video writer for {self.path} (mp4v)")
            self._size = size
        elif size != self._size:
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(np.ascontiguousarray(frame))
        self.frames_written += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_mask_png(folder: str | os.PathLike, index: int, mask: np.ndarray) -> Path:
    """Write ``mask`` as ``folder/<index:05d>.png`` with values 0/255; returns the path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{index:05d}.png"
    if not cv2.imwrite(str(path), np.where(np.asarray(mask) != 0, 255, 0).astype(np.uint8)):
        raise DataError(f"cannot write mask {path}")
    return path
