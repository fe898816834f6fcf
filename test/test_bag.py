"""rosbag2 bags (sqlite3 and MCAP) of real frames: written as a recorder would, read back, tracked by the CLI."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bag_files import RECORD_DELAY_NS, TYPES, Image, String, header, raw_message, stamp_ns, write_bag, write_image_bag
from segtrack_core.bag import Bag, BagError, BagFrameSource, is_bag
from segtrack_core.io import DataError
from cli_runner import run_cli

STORAGES = ("sqlite3", "mcap")


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("encoding", ["bgr8", "rgb8"])
def test_raw_frames_read_back_pixel_equal_with_their_stamps(tmp_path, car, storage, encoding):
    frames, _ = car
    bag = write_image_bag(tmp_path / "bag", storage, frames, encoding=encoding)
    assert is_bag(bag)
    source = BagFrameSource(bag)  # the only image topic: no --topic needed
    assert source.topic.name == "/camera/image_raw" and len(source) == 6
    assert source.fps == pytest.approx(10.0, rel=1e-6)
    read = list(source)
    assert [i for i, _ in read] == list(range(6)) and not source.skipped
    for (_, frame), original in zip(read, frames):
        assert frame.dtype == np.uint8 and np.array_equal(frame, original)
    assert source.stamps == {i: stamp_ns(i) for i in range(6)}
    assert source.log_times == {i: stamp_ns(i) + RECORD_DELAY_NS for i in range(6)}
    assert source.recorded_fps() == pytest.approx(10.0)


@pytest.mark.parametrize("storage, compression", [("sqlite3", "file"), ("sqlite3", "message"), ("mcap", "message")])
def test_zstd_compressed_bags_read_back_pixel_equal(tmp_path, car, storage, compression):
    frames, _ = car
    bag = write_image_bag(tmp_path / "bag", storage, frames, compression=compression)
    assert f"compression_mode: {compression}" in (bag / "metadata.yaml").read_text()
    read = list(BagFrameSource(bag))
    assert len(read) == 6 and all(np.array_equal(frame, original) for (_, frame), original in zip(read, frames))


def test_mono8_reads_as_grey_bgr(tmp_path, car):
    frames, _ = car
    source = BagFrameSource(write_image_bag(tmp_path / "bag", "mcap", frames[:2], encoding="mono8"))
    frame = next(iter(source))[1]
    grey = cv2.cvtColor(frames[0], cv2.COLOR_BGR2GRAY)
    assert frame.shape == (180, 320, 3) and all(np.array_equal(frame[:, :, c], grey) for c in range(3))


@pytest.mark.parametrize("storage", STORAGES)
def test_compressed_frames_decode(tmp_path, car, storage):
    frames, _ = car
    bag = write_image_bag(tmp_path / "bag", storage, frames, compressed=True)
    source = BagFrameSource(bag, "/camera/image_raw/compressed")
    assert source.topic.compressed
    read = list(source)
    assert len(read) == 6 and source.stamps[5] == stamp_ns(5)
    for (_, frame), original in zip(read, frames):
        assert frame.shape == original.shape
        assert np.abs(frame.astype(int) - original).mean() < 3  # JPEG quality 95


def test_storage_files_open_without_their_folder(tmp_path, car):
    frames, _ = car
    for storage, suffix in (("sqlite3", ".db3"), ("mcap", ".mcap")):
        (file,) = (write_image_bag(tmp_path / storage, storage, frames[:2])).glob(f"*{suffix}")
        assert is_bag(file) and len(list(BagFrameSource(file))) == 2


def test_topic_choice_errors_list_the_image_topics(tmp_path, car):
    frames, _ = car
    chatter = [String(data="hello")]
    bag = write_bag(tmp_path / "bag", "mcap", {"/left/image_raw": [raw_message(f, i) for i, f in enumerate(frames)],
                                               "/right/image_raw": [raw_message(frames[0], 0)],
                                               "/chatter": chatter})
    with pytest.raises(BagError, match="2 image topics, choose one with --topic: /left/image_raw "
                                       r"\(sensor_msgs/msg/Image, 6 messages\), /right/image_raw"):
        BagFrameSource(bag)
    with pytest.raises(BagError, match="no topic /nope in bag .*image topics: /left/image_raw"):
        BagFrameSource(bag, "/nope")
    with pytest.raises(BagError, match="/chatter .* is std_msgs/msg/String, not an image"):
        BagFrameSource(bag, "/chatter")
    assert len(list(BagFrameSource(bag, "/right/image_raw"))) == 1


def test_bad_messages_are_skipped_and_an_unknown_encoding_is_a_data_error(tmp_path, car):
    frames, _ = car
    short = raw_message(frames[1], 1)
    short.data = short.data[:-7]  # data length no longer step * height
    smaller = raw_message(cv2.resize(frames[2], (160, 90)), 2)
    cut = bytes(TYPES.serialize_cdr(raw_message(frames[3], 3), "sensor_msgs/msg/Image"))[:100]  # truncated
    messages = [raw_message(frames[0], 0), short, smaller, cut, raw_message(frames[4], 4)]
    source = BagFrameSource(write_bag(tmp_path / "bag", "sqlite3", {"/camera/image_raw": messages}))
    assert [i for i, _ in source] == [0, 4]
    assert [s.index for s in source.skipped] == [1, 2, 3]
    assert "expected step*height" in source.skipped[0].reason and "160x90" in source.skipped[1].reason
    assert "does not deserialize" in source.skipped[2].reason

    depth = Image(header=header(0), height=2, width=2, encoding="32FC1", is_bigendian=0, step=8,
                  data=np.zeros(16, np.uint8))
    source = BagFrameSource(write_bag(tmp_path / "depth", "mcap", {"/depth": [depth]}))
    with pytest.raises(DataError, match="/depth .*unsupported image encoding '32FC1'"):
        list(source)


def test_unreadable_bags_are_bag_errors(tmp_path, car):
    frames, _ = car
    bag = write_image_bag(tmp_path / "bag", "mcap", frames[:2])
    (mcap,) = bag.glob("*.mcap")
    truncated = tmp_path / "truncated.mcap"
    truncated.write_bytes(mcap.read_bytes()[:300])
    not_sqlite = tmp_path / "noise.db3"
    not_sqlite.write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    no_storage = tmp_path / "no_storage"
    no_storage.mkdir()
    (no_storage / "metadata.yaml").write_text((bag / "metadata.yaml").read_text())
    for path, message in ((truncated, "cannot read bag"), (not_sqlite, "not a database"),
                          (no_storage, "database files are missing"), (tmp_path / "absent.mcap", "bag not found")):
        with pytest.raises(BagError, match=message):
            Bag(path)


@pytest.mark.parametrize("storage, compressed", [("sqlite3", False), ("mcap", True)])
def test_track_a_bag_like_a_video(capsys, tmp_path, car, storage, compressed):
    frames, masks = car
    bag = write_image_bag(tmp_path / "bag", storage, frames, compressed=compressed,
                          extra={"/chatter": [String(data="hello")]})
    first_mask = tmp_path / "mask0.png"
    cv2.imwrite(str(first_mask), masks[0].astype(np.uint8) * 255)
    topic = "/camera/image_raw/compressed" if compressed else "/camera/image_raw"
    video, mask_dir = tmp_path / "overlay.mp4", tmp_path / "masks"
    code, out, err = run_cli(capsys, "track", bag, "--topic", topic, "--box-from-mask", first_mask,
                             "--backend", "csrt", "--out", video, "--save-masks", mask_dir, "--no-progress")
    assert code == 0, err
    assert "6 frames (1 init + 5 tracked), 0 skipped" in out and "tracking fps" in out
    assert "per frame: median" in out and "p90" in out
    assert f"bag topic {topic}" in out and "recorded at 10.0 fps" in out
    capture = cv2.VideoCapture(str(video))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0) and capture.get(cv2.CAP_PROP_FRAME_COUNT) == 6
    capture.release()
    files = sorted(mask_dir.glob("*.png"))
    assert [f.name for f in files] == [f"{i:05d}.png" for i in range(6)]
    last = cv2.imread(str(files[-1]), cv2.IMREAD_GRAYSCALE) > 0
    assert (last & masks[5]).sum() / masks[5].sum() > 0.8  # the box still covers the car
    rows = (mask_dir / "stamps.csv").read_text().splitlines()
    assert rows[0] == "mask,log_time_ns,header_stamp_ns"
    assert rows[5] == f"00004.png,{stamp_ns(4) + RECORD_DELAY_NS},{stamp_ns(4)}"


def test_track_bag_errors_are_one_line_exit_2(capsys, tmp_path, car):
    frames, _ = car
    bag = write_bag(tmp_path / "bag", "mcap", {"/a": [raw_message(frames[0], 0)], "/b": [raw_message(frames[0], 0)]})
    noise = tmp_path / "noise.mcap"
    noise.write_bytes(b"not a bag at all")
    frame_dir = tmp_path / "frames"
    frame_dir.mkdir()
    cv2.imwrite(str(frame_dir / "0.png"), frames[0])
    for argv, message in (([bag], "2 image topics, choose one with --topic: /a"),
                          ([bag, "--topic", "/c"], "no topic /c"),
                          ([noise], "cannot read bag"),
                          ([frame_dir, "--topic", "/a"], "--topic is for bags")):
        code, out, err = run_cli(capsys, "track", *argv, "--box", "10,10,50,50", "--backend", "csrt", "--no-progress")
        assert code == 2 and "Traceback" not in err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], err


def test_a_raw_bag_tracks_exactly_like_the_same_frames_in_a_folder(capsys, tmp_path, car):
    frames, masks = car
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{index:05d}.png"), frame)
    bag = write_image_bag(tmp_path / "bag", "sqlite3", frames)
    first_mask = tmp_path / "mask0.png"
    cv2.imwrite(str(first_mask), masks[0].astype(np.uint8) * 255)
    for source, out in ((folder, tmp_path / "from_folder"), (bag, tmp_path / "from_bag")):
        code, _, err = run_cli(capsys, "track", source, "--mask", first_mask, "--backend", "csrt",
                               "--save-masks", out, "--no-progress")
        assert code == 0, err
    for index in range(6):
        name = f"{index:05d}.png"
        assert np.array_equal(cv2.imread(str(tmp_path / "from_folder" / name)),
                              cv2.imread(str(tmp_path / "from_bag" / name)))
