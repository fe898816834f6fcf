"""Frame sources (video file or folder of images), mask reading and result writers (annotated datasets:
``segtrack_core.evaluation.datasets``).

Frames are uint8 HxWx3 BGR. Unreadable frames are reported (logged and listed in ``skipped``) and
skipped, so one corrupt JPEG does not end a run.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
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
