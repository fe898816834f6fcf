"""End to end through the command line with the CSRT backend on a few real frames."""

import json
from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from segtrack_core.cli import main
from segtrack_core import registry
from segtrack_core.trackers.csrt import CsrtConfig, CsrtTracker
from cli_runner import run_cli

BASELINE = "csrt-no-color-names"


@dataclass
class _NoColorNamesConfig(CsrtConfig):
    use_color_names: bool = False


@pytest.fixture(autouse=True)
def second_baseline(monkeypatch):
    """A second, genuinely different backend so that --baseline comparisons run quickly in tests."""
    tracker_cls = type("CsrtNoColorNames", (CsrtTracker,), {"name": BASELINE})
    monkeypatch.setitem(registry.BACKENDS, BASELINE, registry.Backend(
        _NoColorNamesConfig, tracker_cls, "CSRT without colour names (test baseline)"))


@pytest.fixture(scope="module")
def car_frames(mini_davis):
    return mini_davis / "car-shadow" / "frames"


def test_track_writes_a_playable_video_and_masks(capsys, car_frames, tmp_path):
    mask_file = car_frames.parent / "masks" / "00000.png"
    video, masks = tmp_path / "out" / "overlay.mp4", tmp_path / "masks"
    code, out, err = run_cli(capsys, "track", str(car_frames), "--box-from-mask", str(mask_file),
                             "--out", str(video), "--save-masks", str(masks), "--backend", "csrt", "--no-progress")
    assert code == 0, err
    assert "6 frames" in out and "tracking fps" in out and "mean score" in out
    capture = cv2.VideoCapture(str(video))
    decoded = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        decoded.append(frame)
    assert len(decoded) == 6 and decoded[0].shape == (480, 854, 3)
    files = sorted(masks.glob("*.png"))
    assert [f.name for f in files] == [f"{i:05d}.png" for i in range(6)]
    last = cv2.imread(str(files[-1]), cv2.IMREAD_GRAYSCALE)
    assert set(np.unique(last)) == {0, 255}
    gt = cv2.imread(str(car_frames.parent / "masks" / "00005.png"), cv2.IMREAD_GRAYSCALE) > 0
    assert ((last > 0) & gt).sum() / gt.sum() > 0.8  # the box still covers the car


def test_track_from_a_box_and_from_a_mask(capsys, car_frames):
    code, out, err = run_cli(capsys, "track", str(car_frames), "--box", "230,130,270,150", "--backend", "csrt",
                             "--no-progress")
    assert code == 0, err
    code, out, err = run_cli(capsys, "track", str(car_frames), "--mask",
                             str(car_frames.parent / "masks" / "00000.png"), "--backend", "csrt", "--no-progress")
    assert code == 0, err
    assert "tracking 5" in out


def test_track_starts_from_clicks(capsys, car_frames, tmp_path):
    truth = cv2.imread(str(car_frames.parent / "masks" / "00000.png"), cv2.IMREAD_GRAYSCALE) > 0
    inner = np.argwhere(cv2.erode(truth.astype(np.uint8), np.ones((25, 25), np.uint8)) > 0)
    clicks = [f"{x},{y}" for y, x in inner[[0, len(inner) // 2, -1]]]
    masks = tmp_path / "masks"
    code, out, err = run_cli(capsys, "track", str(car_frames), "--points", *clicks, "--background-points", "5,5",
                             "--save-masks", str(masks), "--backend", "csrt", "--no-progress")
    assert code == 0, err
    first = cv2.imread(str(masks / "00000.png"), cv2.IMREAD_GRAYSCALE) > 0
    assert (first & truth).sum() / (first | truth).sum() > 0.5 and not first[5, 5]
    code, _, err = run_cli(capsys, "track", str(car_frames), "--points", "1,2,3", "--backend", "csrt")
    assert code == 2 and "--points must be 2 numbers x,y" in err


@pytest.mark.parametrize("args, message", [
    (["track", "{frames}", "--box", "1,2,3", "--backend", "csrt"], "--box must be 4 numbers"),
    (["track", "{frames}", "--box", "a,b,c,d", "--backend", "csrt"], "--box must be 4 numbers"),
    (["track", "/no/such/input", "--box", "1,2,3,4", "--backend", "csrt"], "input not found"),
    (["track", "{frames}", "--mask", "/no/such/mask.png", "--backend", "csrt"], "mask file not found"),
    (["track", "{frames}", "--box", "2000,10,30,30", "--backend", "csrt"], "outside"),
    (["track", "{frames}", "--box", "1,2,3,4", "--backend", "no-such-backend"], "unknown tracker backend"),
    (["track", "{frames}", "--box", "1,2,3,4", "--backend", "csrt", "--config", "{bad_config}"], "unknown key"),
    (["eval", "/no/such/root", "--format", "davis", "--backend", "csrt"], "not found"),
    (["eval", "{davis}", "--format", "vot", "--backend", "csrt"], "no sequences"),
    (["eval", "{davis}", "--format", "davis", "--sequences", "nope", "--backend", "csrt"], "not found"),
    (["bench", "--sequence", "/no/such/seq", "--backend", "csrt"], "not found"),
])
def test_bad_input_gives_one_error_line_and_exit_2(capsys, mini_davis, car_frames, tmp_path, args, message):
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("use_hog: true\nno_such_option: 3\n")
    argv = [a.format(frames=car_frames, davis=mini_davis, bad_config=bad_config) for a in args]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["track", "x"])  # no initial target
    assert exc.value.code == 2
    assert "one of the arguments --box --mask --box-from-mask --points is required" in capsys.readouterr().err


def test_eval_davis_prints_and_saves_j_and_f_with_a_baseline(capsys, mini_davis, tmp_path):
    code, out, err = run_cli(capsys, "eval", str(mini_davis), "--format", "davis", "--init", "box",
                             "--backend", "csrt", "--baseline", BASELINE, "--out", str(tmp_path), "--no-progress")
    assert code == 0, err
    assert "blackswan" in out and "car-shadow" in out and f"diff = csrt - {BASELINE}" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert [b["backend"] for b in results["backends"]] == ["csrt", BASELINE]
    for backend in results["backends"]:
        summary = backend["summary"]["davis"]
        assert 0.2 < summary["J"] <= 1 and 0 <= summary["F"] <= 1
        assert summary["frames"] == 10  # frames 1..5 of two sequences
        assert len(backend["sequences"][0]["frames"]) == 5
    rows = (tmp_path / "sequences.csv").read_text().splitlines()
    assert rows[0].startswith("backend,protocol,sequence,J,F") and len(rows) == 1 + 2 * 3
    assert (tmp_path / "frames.csv").read_text().count("\n") == 1 + 20


def test_eval_vot_reports_iou_and_failures(capsys, mini_vot, tmp_path):
    code, out, err = run_cli(capsys, "eval", str(mini_vot), "--format", "vot", "--init", "rotated",
                             "--backend", "csrt", "--out", str(tmp_path), "--no-progress")
    assert code == 0, err
    assert "IoU" in out and "AUC" in out and "off%" in out
    summary = json.loads((tmp_path / "results.json").read_text())["backends"][0]["summary"]["vot"]
    assert 0.2 < summary["IoU"] <= 1 and summary["failures"] == 0 and summary["frames"] == 7
    assert 0 < summary["AUC"] <= 1 and summary["off_target"] == 0 and 0.2 < summary["poly_IoU"] <= 1


def test_eval_covers_every_layout_in_one_run(capsys, mini_davis, mini_vot, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "masks_set").symlink_to(mini_davis)
    (root / "boxes_set").symlink_to(mini_vot)
    code, out, err = run_cli(capsys, "eval", str(root), "--backend", "csrt", "--out", str(tmp_path / "out"),
                             "--no-progress")
    assert code == 0, err
    assert "masks_set/car-shadow" in out and "boxes_set/" in out
    assert "mean (2 davis)" in out and "mean (1 vot)" in out
    summary = json.loads((tmp_path / "out" / "results.json").read_text())["backends"][0]["summary"]
    assert set(summary) == {"davis", "vot"}
    code, out, err = run_cli(capsys, "eval", str(root), "--backend", "csrt", "--sequences", "boxes_set",
                             "--no-progress")
    assert code == 0 and "masks_set" not in out and "boxes_set/" in out


def test_bench_prints_latency_and_fps_ratio(capsys, mini_davis):
    code, out, err = run_cli(capsys, "bench", "--sequence", str(mini_davis / "car-shadow"), "--width", "320",
                             "--height", "180", "--frames", "8", "--warmup", "2", "--backend", "csrt",
                             "--baseline", BASELINE, "--device", "cpu")
    assert code == 0, err
    assert "320x180" in out and "median ms" in out and "p90 ms" in out and "end_to_end" in out
    assert f"fps ratio csrt/{BASELINE}:" in out


def test_backends_lists_every_backend_with_its_defaults(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "d3s2:" in out and "csrt:" in out
    assert "    features.search_scale: 4.0" in out and "    runtime.device: 'auto'" in out  # D3S2Config defaults
    assert "parameter sets (--config): cuda_fp16, default, learned" in out
