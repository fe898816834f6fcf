"""The SiamMask reference fixtures (../shared/fixtures/siammask) and their synthetic-weight rule.

The rule is the fixture README's: every tensor is drawn from a generator seeded with the CRC-32 of its
key, scaled by its role; the weights are rebuilt here at test time and never stored in the repository.
"""

from __future__ import annotations

import functools
import json
import math
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from prerequisites import missing


FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "siammask"
GAINS = {"features.features.conv1.weight": 0.01, "rpn_model.cls.head.3.weight": 0.5,
         "rpn_model.loc.head.3.weight": 0.1, "refine_model.post2.weight": 4.0}


def require_fixtures() -> Path:
    if not (FIXTURES / "manifest.json").is_file():
        missing(f"the SiamMask reference fixtures ({FIXTURES})", "equality with the official SiamMask code")
    return FIXTURES


@functools.cache
def manifest() -> dict:
    return json.loads((require_fixtures() / "manifest.json").read_text())


@functools.cache
def _npz(name: str) -> dict:
    with np.load(require_fixtures() / name) as data:
        return {k: data[k] for k in data.files}


def network_reference() -> dict:
    return _npz("network_frame1.npz")


def tracker_reference() -> dict:
    return _npz("tracker_car_shadow.npz")


def _synthetic(key: str, shape: list, role: str) -> np.ndarray:
    if role == "bn_num_batches_tracked":
        return np.zeros((), np.int64)
    n = np.random.default_rng(zlib.crc32(key.encode("utf-8"))).standard_normal(shape)
    if role == "conv_weight":
        value = n * (GAINS.get(key, 1.0) / math.sqrt(math.prod(shape[1:])))
    elif role in ("conv_bias", "bn_bias", "bn_running_mean"):
        value = 0.1 * n
    elif role == "bn_weight":
        value = 1.0 + 0.1 * n
    elif role == "bn_running_var":
        value = 1.0 + 0.5 * np.abs(n)
    else:
        raise AssertionError(f"unknown role {role} of {key}")
    return value.astype(np.float32)


@functools.cache
def synthetic_state_dict() -> "OrderedDict[str, torch.Tensor]":
    """The 356 synthetic tensors in manifest order (cached: the tests only read them)."""
    return OrderedDict((e["key"], torch.from_numpy(_synthetic(e["key"], e["shape"], e["role"])))
                       for e in manifest()["state_dict"])


def save_official_layout(path: Path) -> Path:
    """The synthetic weights as the official training code saves them: {'state_dict': {'module.'+key: ...}}."""
    torch.save({"epoch": 20, "arch": "Custom",
                "state_dict": OrderedDict(("module." + k, v) for k, v in synthetic_state_dict().items())}, path)
    return path
