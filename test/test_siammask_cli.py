"""SiamMask through the command line: `segtrack track` with a checkpoint file in the official layout
(synthetic weights), --weights handling, `segtrack backends` and `segtrack weights`."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from siammask_reference import save_official_layout, tracker_reference

from segtrack_core import make_config
from cli_runner import run_cli

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.set_num_threads(1)
    return save_official_layout(tmp_path_factory.mktemp("siammask_cli") / "SiamMask_synthetic.pth")


@pytest.fixture(scope="module")
def ten_frames(data_root, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("car_shadow_10")
    for index in range(10):
        shutil.copy(data_root / "davis2016" / "car-shadow" / "frames" / f"{index:05d}.jpg", folder)
    return folder


def test_track_with_the_davis_config_reproduces_the_official_masks(capsys, checkpoint, ten_frames, tmp_path):
    masks = tmp_path / "masks"
    code, out, err = run_cli(capsys, "track", ten_frames, "--box", "313,88,342,194", "--backend", "siammask",
                             "--config", "siammask/davis", "--weights", checkpoint,
                             "--device", "cpu", "--save-masks", masks, "--no-progress")
    assert code == 0, err
    assert "10 frames (1 init + 9 tracked)" in out
    reference = tracker_reference()["target_mask"] > 0
    ious = []
    for t in range(9):
        saved = cv2.imread(str(masks / f"{t + 1:05d}.png"), cv2.IMREAD_GRAYSCALE) > 0
        ious.append((saved & reference[t]).sum() / (saved | reference[t]).sum())
    assert ious[0] >= 0.99 and np.mean(ious) >= 0.98, ious


def test_siammask_without_weights_says_where_to_get_them(capsys, ten_frames):
    code, _, err = run_cli(capsys, "track", ten_frames, "--box", "313,88,342,194", "--backend", "siammask",
                           "--no-progress")
    assert code == 2
    assert re.search(r"SiamMask_DAVIS\.pth.*SiamMask_VOT\.pth.*--weights", err), err


def test_bad_weights_file_is_a_clear_cli_error(capsys, ten_frames, tmp_path):
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    code, _, err = run_cli(capsys, "track", ten_frames, "--box", "313,88,342,194", "--backend", "siammask",
                           "--weights", tmp_path / "other.pth", "--no-progress")
    assert code == 2 and "not a SiamMask (sharp) checkpoint" in err and "unexpected keys: conv.weight" in err


def test_weights_for_a_backend_without_weights_is_refused(capsys, ten_frames, checkpoint):
    code, _, err = run_cli(capsys, "track", ten_frames, "--box", "313,88,342,194", "--backend", "csrt",
                           "--weights", checkpoint, "--no-progress")
    assert code == 2 and "backend 'csrt' takes no weights" in err


def test_backends_lists_which_need_weights(capsys):
    code, out, _ = run_cli(capsys, "backends")
    assert code == 0
    sections = dict(re.findall(r"^(\w+): .*\n  weights: (.*)$", out, flags=re.M))
    assert sections["siammask"] == "required (--weights)"
    assert sections["d3s2"] == "optional (--weights)"
    assert sections["csrt"] == "none"


def test_weights_lists_the_official_checkpoints(capsys):
    code, out, _ = run_cli(capsys, "weights")
    assert code == 0
    for name in ("SiamMask_DAVIS.pth", "SiamMask_VOT.pth"):
        assert f"http://www.robots.ox.ac.uk/~qwang/{name}" in out
    assert "MIT" in out


def test_weights_checks_a_file_and_prints_its_sha256(capsys, checkpoint, tmp_path):
    code, out, err = run_cli(capsys, "weights", checkpoint)
    assert code == 0, err
    assert hashlib.sha256(checkpoint.read_bytes()).hexdigest() in out
    assert "356 tensors, key set and shapes match" in out
    cut = tmp_path / "cut.pth"
    cut.write_bytes(checkpoint.read_bytes()[:1000])
    code, out, err = run_cli(capsys, "weights", cut)
    assert code == 2 and "sha256" in out and "cannot read weights file" in err


@pytest.mark.parametrize("name,values", [("davis", (0.04, 0.4, 1.0, 0.35)), ("siammask/vot", (0.04, 0.42, 0.25, 0.3))])
def test_parameter_sets_hold_the_official_hyper_parameters(name, values):
    config = make_config("siammask", name)
    assert (config.penalty_k, config.window_influence, config.lr, config.seg_thr) == values


def test_eval_and_bench_take_weights(capsys, checkpoint, mini_davis, data_root):
    code, out, err = run_cli(capsys, "eval", mini_davis, "--format", "davis", "--sequences", "car-shadow",
                             "--backend", "siammask", "--weights", checkpoint, "--device", "cpu", "--no-progress")
    assert code == 0, err
    assert re.search(r"^car-shadow\s+J\s+\d\.\d{3}\s", out, flags=re.M), out
    code, out, err = run_cli(capsys, "bench", "--backend", "siammask", "--weights", checkpoint, "--device", "cpu",
                             "--frames", "2", "--warmup", "0", "--width", "427", "--height", "240",
                             "--sequence", data_root / "davis2016" / "car-shadow")
    assert code == 0, err
    assert all(stage in out for stage in ("network", "refine", "end_to_end"))
