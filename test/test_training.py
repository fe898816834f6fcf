"""The learned D3S2 segmentation head and `segtrack train`, on a tiny synthetic data set (coloured ellipses
moving over a textured background, plus a still-image set), small crops and few steps."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from segtrack_core.cli import main
from segtrack_core.errors import ConfigError
from segtrack_core.io import DataError
from segtrack_core.models.gim import topk_similarity
from segtrack_core.nets.d3s2_head import (HeadConfig, Memory, SegmentationHead, load_head, save_head)
from segtrack_core.training.datasets import discover
from segtrack_core.training.loop import TrainConfig, latest_checkpoint, load_checkpoint, train
from segtrack_core.training.pairs import PairSampler, PairSettings, validation_pairs

ROOT = Path(__file__).resolve().parent.parent
SIZE = 128  # synthetic frame side
CROP = 64


def _background(rng: np.random.Generator) -> np.ndarray:
    noise = rng.integers(0, 255, (SIZE // 8, SIZE // 8, 3)).astype(np.uint8)
    return cv2.resize(noise, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)


def _clip(folder: Path, rng: np.random.Generator, color: tuple, frames: int = 10) -> None:
    (folder / "frames").mkdir(parents=True)
    (folder / "masks").mkdir()
    background = _background(rng)
    start, velocity = rng.uniform(45, 80, 2), rng.uniform(-3, 3, 2)
    axes = (int(rng.integers(12, 18)), int(rng.integers(8, 12)))
    for i in range(frames):
        center = tuple(int(v) for v in start + i * velocity)
        frame, mask = background.copy(), np.zeros((SIZE, SIZE), np.uint8)
        cv2.ellipse(frame, center, axes, 10 * i, 0, 360, color, -1)
        cv2.ellipse(mask, center, axes, 10 * i, 0, 360, 255, -1)
        cv2.imwrite(str(folder / "frames" / f"{i:05d}.jpg"), frame)
        cv2.imwrite(str(folder / "masks" / f"{i:05d}.png"), mask)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """videos/{clip_a, clip_b, valclip} (DAVIS layout) + stills/ (image set with index.tsv)."""
    root = tmp_path_factory.mktemp("traindata")
    rng = np.random.default_rng(0)
    for name, color in (("clip_a", (0, 0, 220)), ("clip_b", (220, 60, 0)), ("valclip", (0, 200, 0))):
        _clip(root / "videos" / name, rng, color)
    stills = root / "stills"
    (stills / "images").mkdir(parents=True)
    (stills / "masks").mkdir()
    rows = ["name\twidth\theight\tn_masks\tsource"]
    for k in range(2):
        image = _background(rng)
        for j, (center, color) in enumerate((((40, 50), (0, 220, 220)), ((85, 80), (200, 0, 200)))):
            mask = np.zeros((SIZE, SIZE), np.uint8)
            cv2.ellipse(image, center, (14, 10), 30 * k, 0, 360, color, -1)
            cv2.ellipse(mask, center, (14, 10), 30 * k, 0, 360, 255, -1)
            cv2.imwrite(str(stills / "masks" / f"img{k}_{j}.png"), mask)
        cv2.imwrite(str(stills / "images" / f"img{k}.jpg"), image)
        rows.append(f"img{k}\t{SIZE}\t{SIZE}\t2\tsynthetic")
    (stills / "index.tsv").write_text("\n".join(rows) + "\n")
    return root


def _config(data_root: Path, out: Path, **overrides) -> TrainConfig:
    base = TrainConfig(data_root=str(data_root), out=str(out), epochs=2, steps_per_epoch=3, batch=2, lr=3e-3,
                       seed=1, val_clips=("valclip",), checkpoint_every=2, workers=0, progress=False, threads=1,
                       pairs=PairSettings(crop=CROP))
    return replace(base, **overrides)


def _quiet(_: str) -> None:
    pass


# --- network ----------------------------------------------------------------------------------------

def test_head_similarity_matches_the_online_gim_and_handles_small_and_padded_memories():
    torch.manual_seed(0)
    head = SegmentationHead(HeadConfig()).eval()
    feats = {2: torch.randn(2, 16, 32, 32) * 18, 4: torch.randn(2, 24, 16, 16) * 18,
             8: torch.randn(2, 40, 8, 8) * 10, 16: torch.randn(2, 112, 4, 4) * 4}
    with torch.no_grad():
        keys = head.keys(feats)
        assert keys.shape == (2, 64, 8, 8)
        assert torch.allclose(keys.norm(dim=1), torch.ones(2, 8, 8), atol=1e-5)
        coverage = torch.zeros(2, 8, 8)
        coverage[0, 2:5, 2:5] = 1.0
        coverage[1, 4, 4] = 0.3  # a target smaller than a cell: its best-covered cell is the foreground
        memory = head.memories(keys, coverage)
        assert memory.foreground.valid.sum(1).tolist() == [9, 1]
        assert memory.background.valid.sum(1).tolist() == [64 - 9, 63]
        fg, bg = head.similarity(keys, memory.foreground, memory.background)
        for i in range(2):
            fg_vectors = keys[i].flatten(1).t()[coverage[i].flatten() >= (0.5 if i == 0 else 0.3)]
            assert torch.allclose(fg[i], topk_similarity(keys[i], fg_vectors, 3), atol=1e-5)
            bg_vectors = keys[i].flatten(1).t()[coverage[i].flatten() <= 0.05]
            assert torch.allclose(bg[i], topk_similarity(keys[i], bg_vectors, 3), atol=1e-5)
        # Plain vectors (the tracker's FeatureMemory) give the same as the padded batch memory.
        plain_fg, _ = head.similarity(keys[1:], fg_vectors, bg_vectors)
        assert torch.allclose(plain_fg[0], fg[1], atol=1e-6)
        logits = head.decode(feats, keys, fg, bg, torch.rand(2, 8, 8))
        assert logits.shape == (2, 1, 64, 64)
    padded = Memory(torch.cat([fg_vectors, torch.zeros(5, 64)])[None], torch.tensor([[True] + [False] * 5]))
    assert torch.allclose(head.similarity(keys[1:], padded, bg_vectors)[0][0], (keys[1].flatten(1).t() @ fg_vectors[0])
                          .reshape(8, 8), atol=1e-5)


def test_load_head_round_trip_and_wrong_files(tmp_path):
    torch.manual_seed(0)
    head = SegmentationHead(HeadConfig(key_dim=32, channels8=24))
    path = save_head(head, tmp_path / "head.pt")
    loaded = load_head(path)
    assert loaded.config == head.config
    for key, value in head.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])

    state = torch.load(path, weights_only=True)
    state["adjust.0.weight_renamed"] = state.pop("adjust.0.weight")
    state["extra.bias"] = torch.zeros(3)
    torch.save(state, tmp_path / "wrong_keys.pt")
    with pytest.raises(ConfigError, match=r"missing keys \['adjust.0.weight'\].*unexpected keys \['adjust.0."
                                          r"weight_renamed', 'extra.bias'\]"):
        load_head(tmp_path / "wrong_keys.pt")

    state = torch.load(path, weights_only=True)
    state["__config__"]["key_dim"] = 64  # the config says 64 key channels, the tensors hold 32
    torch.save(state, tmp_path / "wrong_shapes.pt")
    with pytest.raises(ConfigError, match="wrong shapes.*adjust.2.weight"):
        load_head(tmp_path / "wrong_shapes.pt")

    torch.save({k: v for k, v in head.state_dict().items()}, tmp_path / "no_config.pt")
    with pytest.raises(ConfigError, match="no __config__"):
        load_head(tmp_path / "no_config.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a torch file")
    with pytest.raises(ConfigError, match="cannot load"):
        load_head(tmp_path / "garbage.pt")


# --- data -------------------------------------------------------------------------------------------

def test_pair_sampler_is_seeded_and_never_draws_validation_clips(data_root):
    data = discover(data_root)
    assert data.sets == {"stills": "images", "videos": "video"}
    train_data, val = data.split(["valclip"])
    assert [c.name for c in val] == ["valclip"] and len(train_data.clips) == 2
    settings = PairSettings(crop=CROP)
    sampler = PairSampler(train_data, settings, seed=3)
    pairs = [sampler.pair(step, i) for step in range(20) for i in range(2)]
    assert not any("valclip" in p.source for p in pairs)
    assert any(p.clip for p in pairs) and any(p.clip is None for p in pairs)  # video and still pairs
    again = PairSampler(train_data, settings, seed=3).pair(7, 1)
    assert again.source == pairs[15].source
    for field in ("reference", "coverage", "test", "mask", "location"):
        assert np.array_equal(getattr(again, field), getattr(pairs[15], field))
    other_seed = [PairSampler(train_data, settings, seed=4).pair(s, 0).source for s in range(10)]
    other_rank = [PairSampler(train_data, settings, seed=3, rank=1).pair(s, 0).source for s in range(10)]
    assert other_seed != [pairs[2 * s].source for s in range(10)] != other_rank
    first = pairs[0]
    assert first.reference.shape == first.test.shape == (CROP, CROP, 3) and first.mask.shape == (CROP, CROP)
    assert first.coverage.shape == first.location.shape == (CROP // 8, CROP // 8)
    assert first.mask.any() and first.coverage.max() > 0.5
    for pair in pairs:  # the location peak lies near the test target's box centre (jittered by 1/8 its size)
        ys, xs = np.nonzero(pair.mask)
        centre = np.array([xs.min() + xs.max() + 1, ys.min() + ys.max() + 1]) / 2 / 8 - 0.5  # in cells
        py, px = np.unravel_index(np.argmax(pair.location), pair.location.shape)
        assert np.abs(np.array([px, py]) - centre).max() <= 1.0, pair.source

    val_pairs = validation_pairs(val, settings, every=3)
    assert [p.source for p in val_pairs] == ["videos/valclip:0->3", "videos/valclip:0->6", "videos/valclip:0->9"]
    assert np.array_equal(validation_pairs(val, settings, every=3)[1].test, val_pairs[1].test)

    with pytest.raises(DataError, match="nosuch"):
        data.split(["nosuch"])


def test_cli_train_rejects_missing_and_empty_data_roots(tmp_path, capsys):
    assert main(["train", str(tmp_path / "absent"), "--out", str(tmp_path / "run")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty" / "nothing_here").mkdir(parents=True)
    assert main(["train", str(tmp_path / "empty"), "--out", str(tmp_path / "run")]) == 2
    assert "no training sets" in capsys.readouterr().err


def test_cli_train_takes_pair_and_head_settings_from_a_yaml_file(data_root, tmp_path, capsys):
    settings = tmp_path / "settings.yaml"
    settings.write_text("pairs:\n  box_share: 0.5\nhead:\n  channels8: 16\n  key_dim: 32\n")
    code = main(["train", str(data_root), "--out", str(tmp_path / "run"), "--settings", str(settings), "--crop", "64",
                 "--epochs", "1", "--steps-per-epoch", "1", "--batch", "2", "--val-clips", "valclip", "--workers", "0",
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    head = load_head(tmp_path / "run" / "d3s2_head.pt")
    assert (head.config.channels8, head.config.key_dim, head.config.channels4) == (16, 32, HeadConfig().channels4)
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["config"]["pairs"]["box_share"] == 0.5 and report["config"]["pairs"]["crop"] == 64
    settings.write_text("head:\n  channels9: 16\n")
    assert main(["train", str(data_root), "--out", str(tmp_path / "bad"), "--settings", str(settings)]) == 2
    assert "channels9" in capsys.readouterr().err


# --- training ---------------------------------------------------------------------------------------

def test_loss_falls_below_the_prior(data_root, tmp_path):
    cfg = _config(data_root, tmp_path / "run", epochs=1, steps_per_epoch=30, batch=4, checkpoint_every=100)
    result = train(cfg, command=["test"], log=_quiet)
    losses = result.losses
    assert len(losses) == 30
    # Predicting only the foreground share p scores the entropy H(p); learning must go well below it.
    sampler = PairSampler(discover(data_root).split(["valclip"])[0], cfg.pairs, cfg.seed)
    p = float(np.mean([sampler.batch(s, 4).mask.mean() for s in range(5)]))
    prior = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    assert last < 0.5 * first and last < 0.6 * prior, (first, last, prior)
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["steps_done"] == 30 and report["validation"][0]["pairs"] == 1
    assert load_head(tmp_path / "run" / "d3s2_head.pt").config == cfg.head


def test_checkpoints_load_with_weights_only_and_resume_repeats_the_uninterrupted_run(data_root, tmp_path):
    # A spawned loader process draws the uninterrupted run's batches, the training process the others'.
    whole = train(_config(data_root, tmp_path / "whole", workers=1), command=["test"], log=_quiet)
    assert len(whole.losses) == 6

    path = latest_checkpoint(tmp_path / "whole")
    assert path.name == "step_00000006.pt"
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert state["step"] == 6 and state["epoch"] == 2 and len(state["history"]["val"]) == 2
    assert set(state["optimizer"]["state"]) and "torch" in state["rng"]
    for key, value in whole.head.state_dict().items():
        assert torch.equal(state["model"][key], value)
    assert load_checkpoint(path)["history"]["loss"] == whole.losses

    interrupted = train(_config(data_root, tmp_path / "split", stop_after=4), command=["test"], log=_quiet)
    assert interrupted.losses == whole.losses[:4]
    assert latest_checkpoint(tmp_path / "split").name == "step_00000004.pt"  # mid-epoch 2
    assert not (tmp_path / "split" / "d3s2_head.pt").exists()
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        train(_config(data_root, tmp_path / "split"), command=["test"], log=_quiet)
    with pytest.raises(ConfigError, match="seed"):
        train(_config(data_root, tmp_path / "split", resume=True, seed=2), command=["test"], log=_quiet)

    resumed = train(_config(data_root, tmp_path / "split", resume=True), command=["test"], log=_quiet)
    assert resumed.losses[4] == whole.losses[4]  # step 5: the same batch from the same state
    assert resumed.losses == whole.losses
    for key, value in whole.head.state_dict().items():
        assert torch.equal(resumed.head.state_dict()[key], value)


_DDP_WORKER = textwrap.dedent("""
    import sys, torch
    from segtrack_core.training.loop import TrainConfig, train
    from segtrack_core.training.pairs import PairSettings
    data, out, dump = sys.argv[1:4]
    cfg = TrainConfig(data_root=data, out=out, epochs=1, steps_per_epoch=3, batch=2, lr=3e-3, seed=1,
                      val_clips=("valclip",), workers=0, threads=1, progress=False, pairs=PairSettings(crop=64))
    result = train(cfg, command=["ddp-test"], log=lambda _: None)
    torch.save({"state": result.head.state_dict(), "losses": result.losses}, dump)
""")


def test_distributed_replicas_stay_identical(data_root, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(2):
        env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                   WORLD_SIZE="2", PYTHONPATH=str(ROOT))
        procs.append(subprocess.Popen([sys.executable, "-c", _DDP_WORKER, str(data_root), str(tmp_path / "run"),
                                       str(tmp_path / f"rank{rank}.pt")], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    for proc in procs:
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, output
    dumps = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    torch.manual_seed(1)
    initial = SegmentationHead().state_dict()
    moved = False
    for key, value in dumps[0]["state"].items():
        assert torch.equal(value, dumps[1]["state"][key]), key
        moved |= not torch.equal(value, initial[key])
    assert moved  # the replicas trained, and identically
    assert dumps[0]["losses"] == dumps[1]["losses"] and len(dumps[0]["losses"]) == 3  # the all-reduced mean
    assert [p.name for p in sorted((tmp_path / "run" / "checkpoints").iterdir())] == ["step_00000003.pt"]
