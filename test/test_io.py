"""Frame sources, dataset loaders and writers."""

import shutil

import cv2
import numpy as np
import pytest

from segtrack_core.evaluation.datasets import load_davis, load_vot, parse_vot_groundtruth
from segtrack_core.io import DataError, FrameSource, VideoWriter, read_mask, write_mask_png


def test_folder_with_corrupt_frames_reports_and_skips_them(data_root, tmp_path):
    for src in sorted((data_root / "davis2016" / "car-shadow" / "frames").glob("*.jpg"))[:5]:
        shutil.copy(src, tmp_path / src.name)
    (tmp_path / "00001.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    (tmp_path / "00003.jpg").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("ignored: not an image")
    reported = []
    source = FrameSource(tmp_path, on_skip=reported.append)
    assert len(source) == 5
    frames = list(source)
    assert [i for i, _ in frames] == [0, 2, 4]
    assert all(f.shape == (480, 854, 3) and f.dtype == np.uint8 for _, f in frames)
    assert [s.index for s in source.skipped] == [1, 3] == [s.index for s in reported]
    assert "00001.jpg" in source.skipped[0].reason


def test_folder_frame_of_another_size_is_skipped(tmp_path):
    for i, size in enumerate([(40, 60), (40, 60), (50, 60), (40, 60)]):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), np.full((*size, 3), i * 40, np.uint8))
    source = FrameSource(tmp_path)
    assert [i for i, _ in source] == [0, 1, 3]
    assert [s.index for s in source.skipped] == [2]


def test_video_round_trip(tmp_path):
    path = tmp_path / "clip.mp4"
    written = []
    with VideoWriter(path, fps=10) as writer:
        for i in range(12):
            frame = np.full((96, 128, 3), 40, np.uint8)
            cv2.rectangle(frame, (10 + 6 * i, 30), (40 + 6 * i, 60), (0, 200, 255), -1)
            writer.write(frame)
            written.append(frame)
    source = FrameSource(path)
    assert source.is_video and len(source) == 12
    frames = list(source)
    assert [i for i, _ in frames] == list(range(12))
    assert not source.skipped
    for (_, got), expected in zip(frames, written):
        assert got.shape == expected.shape
        assert np.abs(got.astype(int) - expected).mean() < 6  # lossy codec, same picture


def test_missing_or_empty_inputs_raise_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        FrameSource(tmp_path / "nope.mp4")
    with pytest.raises(DataError, match="no images"):
        FrameSource(tmp_path)
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(DataError, match="cannot open video"):
        FrameSource(tmp_path / "bad.mp4")


def test_load_davis(data_root):
    sequences = load_davis(data_root / "davis2016")
    assert [(s.name, len(s)) for s in sequences] == [("blackswan", 50), ("car-shadow", 40)]
    mask = sequences[1].gt_mask(0)
    assert mask.shape == (480, 854) and mask.dtype == bool and 0 < mask.mean() < 0.5
    assert [s.name for s in load_davis(data_root / "davis2016", ["car-shadow"])] == ["car-shadow"]
    with pytest.raises(DataError, match="not found"):
        load_davis(data_root / "davis2016", ["no-such-sequence"])


def test_load_vot(data_root):
    (bag,) = load_vot(data_root / "vot2015")
    assert bag.name == "bag" and len(bag) == 196 and bag.polygons.shape == (196, 8)
    assert bag.polygons[0] == pytest.approx([291.827, 203.603, 396.382, 264.289, 442.173, 185.397, 337.618, 124.711])


def test_vot_groundtruth_formats():
    polygons = parse_vot_groundtruth("1,2,3,4,5,6,7,8\n10,20,30,40\nnan,nan,nan,nan,nan,nan,nan,nan\n")
    assert polygons[0] == pytest.approx([1, 2, 3, 4, 5, 6, 7, 8])
    assert polygons[1] == pytest.approx([10, 20, 40, 20, 40, 60, 10, 60])  # x,y,w,h -> corners
    assert np.isnan(polygons[2]).all()
    with pytest.raises(DataError, match="line 1"):
        parse_vot_groundtruth("1,2,3\n")
    with pytest.raises(DataError, match="line 2"):
        parse_vot_groundtruth("1,2,3,4\n1,2,x,4\n")


def test_vot_frame_and_groundtruth_count_must_match(tmp_path):
    (tmp_path / "seq" / "imgs").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "seq" / "imgs" / "00000001.jpg"), np.zeros((20, 20, 3), np.uint8))
    (tmp_path / "seq" / "groundtruth.txt").write_text("1,1,5,5\n2,2,5,5\n")
    with pytest.raises(DataError, match="1 frames but 2"):
        load_vot(tmp_path)


def test_mask_png_round_trip(tmp_path):
    mask = np.zeros((12, 16), bool)
    mask[3:7, 4:10] = True
    path = write_mask_png(tmp_path / "masks", 7, mask)
    assert path.name == "00007.png"
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(raw)) == {0, 255}
    assert np.array_equal(read_mask(path), mask)
