"""The evaluation package: saved predictions, re-scoring without a tracker, and the protocols."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from segtrack_core.evaluation.datasets import discover_sequences
from segtrack_core.evaluation.predictions import Prediction, read_sequence
from segtrack_core.evaluation.protocols import PROTOCOLS, protocol_for
from segtrack_core.evaluation.runner import evaluate, parameter_set_name, score
from segtrack_core.io import FrameSource
from segtrack_core.registry import make_tracker
from cli_runner import run_cli

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def both_layouts(mini_davis, mini_vot, tmp_path_factory):
    root = tmp_path_factory.mktemp("both_layouts")
    (root / "masks_set").symlink_to(mini_davis)
    (root / "boxes_set").symlink_to(mini_vot)
    return root


def test_rescoring_saved_predictions_reproduces_the_run(capsys, both_layouts, tmp_path, monkeypatch):
    out = tmp_path / "run"
    code, printed, err = run_cli(capsys, "eval", both_layouts, "--backend", "csrt", "--init", "rotated",
                                 "--out", out, "--no-progress")
    assert code == 0, err
    original = {name: (out / name).read_text() for name in ("results.json", "sequences.csv", "frames.csv")}
    # Raw predictions, one folder per backend / parameter set / sequence.
    saved = read_sequence(out / "csrt" / "default" / "masks_set" / "car-shadow")
    assert [p.frame for p in saved.predictions] == [1, 2, 3, 4, 5] and saved.shape == (480, 854)
    assert all(p.box is not None and p.rotated_box is not None for p in saved.predictions)
    assert saved.predictions[0].mask.shape == (480, 854)

    # No tracker may run while re-scoring.
    def no_tracking(*args, **kwargs):
        raise AssertionError("re-scoring built a tracker")
    monkeypatch.setattr("segtrack_core.registry.create_tracker", no_tracking)
    monkeypatch.setattr("segtrack_core.cli.make_tracker", no_tracking)
    rescored = tmp_path / "rescored"
    code, printed_again, err = run_cli(capsys, "score", out, "--out", rescored)
    assert code == 0, err
    for name, text in original.items():
        assert (rescored / name).read_text() == text, name  # every figure, time and fps identical
    assert printed_again.splitlines()[:-1] == printed.splitlines()[:-1]  # the table (not the "saved" line)
    results = json.loads(original["results.json"])["backends"][0]
    assert set(results["summary"]) == {"davis", "vot"} and results["summary"]["davis"]["frames"] == 10


def test_saved_predictions_score_as_the_live_tracker_output(both_layouts, tmp_path):
    """The saved form loses nothing that scoring uses: scoring the TrackResults in memory, frame by frame,
    gives bit for bit the run's per-frame measures (CSRT is deterministic)."""
    sequences = discover_sequences(both_layouts, ["masks_set/car-shadow", "boxes_set"])
    report = evaluate(sequences, {"csrt": make_tracker("csrt")}, "box", tmp_path / "run", both_layouts)
    assert len(report.results[0].sequences) == len(sequences) == 2
    for sequence, scored in zip(sequences, report.results[0].sequences):
        protocol = protocol_for(sequence)
        tracker = make_tracker("csrt")
        frames = [frame for _, frame in FrameSource(sequence.frame_paths)]
        tracker.initialize(frames[0], protocol.init_target(sequence, frames[0].shape[:2], "box"))
        for index, frame in enumerate(frames[1:], start=1):
            result = tracker.track(frame)
            live = Prediction(index, result.state.value, result.score, 0.0, result.box, result.rotated_box)
            live.__dict__["mask"] = result.mask  # in memory, not read back from a PNG
            record = scored.frames[index - 1]
            assert record.frame == index and record.score == result.score
            assert record.measures == protocol.score_frame(sequence, live, frame.shape[:2])


def test_rescoring_reads_the_ground_truth_again(capsys, mini_davis, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(mini_davis, data)
    out = tmp_path / "run"
    assert run_cli(capsys, "eval", data, "--backend", "csrt", "--out", out, "--no-progress")[0] == 0
    first = score(out).results[0].sequences[0]
    assert first.sequence == "blackswan" and first.summary()["J"] > 0.2
    for mask in sorted((data / "blackswan" / "masks").glob("*.png"))[1:]:
        cv2.imwrite(str(mask), np.zeros((480, 854), np.uint8))  # the object is gone from the ground truth
    moved = tmp_path / "moved"
    data.rename(moved)
    report = score(out, moved)  # the data folder given on the command line replaces the recorded one
    assert report.root == str(moved) and report.results[0].sequences[0].summary()["J"] == 0.0


def test_score_without_a_saved_run_is_a_clear_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "score", tmp_path)
    assert code == 2 and "no saved evaluation" in err


def test_parameter_set_folder_names(tmp_path):
    assert parameter_set_name("d3s2", None) == "default"
    assert parameter_set_name("d3s2", "default") == "default"
    assert parameter_set_name("csrt", "default") == "default"  # no csrt/default.yaml: its config's defaults
    assert parameter_set_name("d3s2", REPO / "config" / "d3s2" / "cuda_fp16.yaml") == "cuda_fp16"
    (tmp_path / "mine.yaml").write_text("features:\n  search_scale: 4.0\n")
    assert parameter_set_name("d3s2", tmp_path / "mine.yaml") == "custom"
    assert parameter_set_name("d3s2", "cuda_fp16") == "cuda_fp16"
    assert parameter_set_name("siammask", "siammask/vot") == "vot"


def test_each_layout_names_its_protocol(mini_davis, mini_vot):
    (davis,) = discover_sequences(mini_davis, ["car-shadow"])
    (vot,) = discover_sequences(mini_vot)
    assert protocol_for(davis) is PROTOCOLS["davis"] and protocol_for(vot) is PROTOCOLS["vot"]
    shape = (480, 854)
    mask_target = protocol_for(davis).init_target(davis, shape, "mask")
    assert np.array_equal(mask_target.mask, davis.gt_mask(0))
    with pytest.raises(ValueError, match="init must be one of"):
        protocol_for(vot).init_target(vot, shape, "points")
