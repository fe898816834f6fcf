"""Shared fixtures: the real data beside the repository (<repo>/../shared/data) and small copies of it.
Also puts scripts/ on sys.path: the ROS tests drive the node with the development harness (ros_harness),
which is not installed."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from prerequisites import missing
from segtrack_core.io import read_image, read_mask

ROOT = Path(__file__).resolve().parent.parent
DATA_ROOT = ROOT.parent / "shared" / "data"
DATA_FOLDERS = ("davis2016", "vots2023", "boxes", "vot2015")  # the layouts the tests read
sys.path.insert(0, str(ROOT / "scripts"))


@pytest.fixture(scope="session")
def data_root() -> Path:
    absent = [name for name in DATA_FOLDERS if not (DATA_ROOT / name).is_dir()]
    if absent:
        missing(f"the shared data ({DATA_ROOT}: {', '.join(absent)})",
                "tracking, evaluation and node behaviour on real frames")
    return DATA_ROOT


@pytest.fixture(scope="session")
def load_davis_frames(data_root):
    """load(sequence="car-shadow", count=5) -> (list of BGR frames, list of bool masks)."""

    def load(sequence: str = "car-shadow", count: int = 5) -> tuple[list[np.ndarray], list[np.ndarray]]:
        seq = data_root / "davis2016" / sequence
        names = sorted(p.stem for p in (seq / "frames").glob("*.jpg"))[:count]
        frames = [read_image(seq / "frames" / f"{n}.jpg") for n in names]
        masks = [read_mask(seq / "masks" / f"{n}.png") for n in names]
        return frames, masks

    return load


@pytest.fixture(scope="session")
def load_resized_frames(load_davis_frames):
    """load(sequence, count, size) -> frames and masks of a DAVIS sequence resized to size = (w, h)."""

    def load(sequence: str, count: int, size: tuple[int, int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        frames, masks = load_davis_frames(sequence, count)
        return ([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames],
                [cv2.resize(m.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0 for m in masks])

    return load


@pytest.fixture(scope="session")
def car(load_resized_frames):
    """Six car-shadow frames and their masks at 320x180 (the bag and replay tests' recording)."""
    return load_resized_frames("car-shadow", 6, (320, 180))


@pytest.fixture(scope="session")
def small_clip(load_resized_frames):
    """The ROS tests' camera: 8 car-shadow frames at 427x240 and the car's first box (x, y, w, h)."""
    from segtrack_core.geometry import mask_to_box

    frames, masks = load_resized_frames("car-shadow", 8, (427, 240))
    return frames, mask_to_box(masks[0]).as_tuple()


@pytest.fixture(scope="session")
def mini_davis(data_root, tmp_path_factory) -> Path:
    """DAVIS-layout root with the first 6 frames of car-shadow and blackswan (fast end-to-end runs)."""
    root = tmp_path_factory.mktemp("mini_davis")
    for name in ("car-shadow", "blackswan"):
        for sub, suffix in (("frames", "jpg"), ("masks", "png")):
            target = root / name / sub
            target.mkdir(parents=True)
            for src in sorted((data_root / "davis2016" / name / sub).glob(f"*.{suffix}"))[:6]:
                shutil.copy(src, target / src.name)
    return root


@pytest.fixture(scope="session")
def mini_vot(data_root, tmp_path_factory) -> Path:
    """VOT-layout root with the first 8 frames of bag and their ground truth."""
    root = tmp_path_factory.mktemp("mini_vot")
    src = data_root / "vot2015" / "bag"
    (root / "bag" / "imgs").mkdir(parents=True)
    for image in sorted((src / "imgs").glob("*.jpg"))[:8]:
        shutil.copy(image, root / "bag" / "imgs" / image.name)
    lines = (src / "groundtruth.txt").read_text().splitlines()[:8]
    (root / "bag" / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    return root
