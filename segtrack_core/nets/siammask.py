"""SiamMask ("sharp": with the refinement module) in plain torch, laid out so that the official checkpoints
SiamMask_DAVIS.pth / SiamMask_VOT.pth load with ``strict=True``.

Module and parameter names follow the official ``experiments/siammask_sharp`` model (``Custom``): a
ResNet-50 cut after layer3 (``features.features``), a 1x1 adjust layer (``features.downsample``), the
depthwise-correlation RPN (``rpn_model.cls`` / ``rpn_model.loc``), the mask branch (``mask_model.mask``)
and the refinement module (``refine_model``). The network reads BGR pixels in 0..255, not normalised.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError

ANCHOR_COUNT = 5
MASK_SIDE = 63  # plain mask head: 63x63 logits per position
REFINED_SIDE = 127  # refinement module output side


class Bottleneck(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None) -> None:
        super().__init__()
        # The official padding rule: 2 - stride (so 0 for the stride-2 block), or the dilation.
        padding = dilation if dilation > 1 else 2 - stride
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=padding, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


def _downsample(inplanes: int, planes: int, kernel: int, stride: int, padding: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inplanes, planes, kernel, stride=stride, padding=padding, bias=False),
                         nn.BatchNorm2d(planes))


class ResNet50Layer3(nn.Module):
    """ResNet-50 up to layer3 as SiamMask modifies it: unpadded conv1, layer3 dilated instead of strided."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=0, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = nn.Sequential(
            Bottleneck(64, 64, downsample=_downsample(64, 256, 1, 1, 0)),
            *[Bottleneck(256, 64) for _ in range(2)])
        self.layer2 = nn.Sequential(
            Bottleneck(256, 128, stride=2, downsample=_downsample(256, 512, 3, 2, 0)),
            *[Bottleneck(512, 128) for _ in range(3)])
        # The first layer3 block runs undilated (padding 1) with a 3x3 downsample; the rest at dilation 2.
        self.layer3 = nn.Sequential(
            Bottleneck(512, 256, downsample=_downsample(512, 1024, 3, 1, 1)),
            *[Bottleneck(1024, 256, dilation=2) for _ in range(5)])

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        p0 = self.relu(self.bn1(self.conv1(x)))
        p1 = self.layer1(self.maxpool(p0))
        p2 = self.layer2(p1)
        p3 = self.layer3(p2)
        return [p0, p1, p2, p3]


class AdjustLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.downsample = nn.Sequential(nn.Conv2d(1024, 256, 1, bias=False), nn.BatchNorm2d(256))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        # The template (15x15) keeps its centre 7x7; the search region (31x31) is left whole.
        return x[:, :, 4:-4, 4:-4] if x.shape[3] < 20 else x


class Features(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = ResNet50Layer3()
        self.downsample = AdjustLayer()

    def forward(self, x: torch.Tensor) -> Tuple[List[torch.Tensor], torch.Tensor]:
        levels = self.features(x)
        return levels, self.downsample(levels[-1])


def _conv_bn_relu(channels: int, kernel: int) -> List[nn.Module]:
    return [nn.Conv2d(channels, channels, kernel, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]


class DepthCorr(nn.Module):
    """Template and search branches, depthwise cross-correlation, then a 1x1 head."""

    def __init__(self, out_channels: int, channels: int = 256) -> None:
        super().__init__()
        self.conv_kernel = nn.Sequential(*_conv_bn_relu(channels, 3))
        self.conv_search = nn.Sequential(*_conv_bn_relu(channels, 3))
        self.head = nn.Sequential(*_conv_bn_relu(channels, 1), nn.Conv2d(channels, out_channels, 1))

    def forward_corr(self, template: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        kernel = self.conv_kernel(template)
        search = self.conv_search(search)
        batch, channels = kernel.shape[:2]
        out = F.conv2d(search.reshape(1, batch * channels, *search.shape[2:]),
                       kernel.reshape(batch * channels, 1, *kernel.shape[2:]), groups=batch * channels)
        return out.reshape(batch, channels, *out.shape[2:])

    def forward(self, template: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_corr(template, search))


class RPN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cls = DepthCorr(2 * ANCHOR_COUNT)
        self.loc = DepthCorr(4 * ANCHOR_COUNT)


class MaskBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mask = DepthCorr(MASK_SIDE * MASK_SIDE)


def _two_convs(cin: int, mid: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, mid, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(mid, cout, 3, padding=1), nn.ReLU(inplace=True))


class Refine(nn.Module):
    """Refinement module: upsamples the correlation feature of one position with backbone skip features."""

    def __init__(self) -> None:
        super().__init__()
        self.v0 = _two_convs(64, 16, 4)
        self.v1 = _two_convs(256, 64, 16)
        self.v2 = _two_convs(512, 128, 32)
        self.h2 = _two_convs(32, 32, 32)
        self.h1 = _two_convs(16, 16, 16)
        self.h0 = _two_convs(4, 4, 4)
        self.deconv = nn.ConvTranspose2d(256, 32, 15, 15)
        self.post0 = nn.Conv2d(32, 16, 3, padding=1)
        self.post1 = nn.Conv2d(16, 4, 3, padding=1)
        self.post2 = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, levels: List[torch.Tensor], corr_feature: torch.Tensor, row: int, col: int) -> torch.Tensor:
        """(1, 127*127) mask logits for score-map position (row, col) of a single search crop."""
        p0 = F.pad(levels[0], [16] * 4)[:, :, 4 * row:4 * row + 61, 4 * col:4 * col + 61]
        p1 = F.pad(levels[1], [8] * 4)[:, :, 2 * row:2 * row + 31, 2 * col:2 * col + 31]
        p2 = F.pad(levels[2], [4] * 4)[:, :, row:row + 15, col:col + 15]
        p3 = corr_feature[:, :, row, col].reshape(-1, 256, 1, 1)
        out = self.deconv(p3)
        # The official code upsamples with F.upsample's default, legacy 'nearest'.
        out = self.post0(F.interpolate(self.h2(out) + self.v2(p2), size=(31, 31), mode="nearest"))
        out = self.post1(F.interpolate(self.h1(out) + self.v1(p1), size=(61, 61), mode="nearest"))
        out = self.post2(F.interpolate(self.h0(out) + self.v0(p0), size=(127, 127), mode="nearest"))
        return out.reshape(-1, REFINED_SIDE * REFINED_SIDE)


@dataclass
class SearchOutput:
    levels: List[torch.Tensor]  # ResNet p0..p3 of the search crop (the refinement's skip inputs)
    search: torch.Tensor  # adjust-layer output (1, 256, 31, 31)
    cls: torch.Tensor  # (1, 10, 25, 25): background logits of anchors 0-4, then foreground
    loc: torch.Tensor  # (1, 20, 25, 25): dx, dy, dw, dh, 5 anchors each
    corr_feature: torch.Tensor  # mask branch correlation (1, 256, 25, 25), the refinement's input


class SiamMaskSharp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = Features()
        self.rpn_model = RPN()
        self.mask_model = MaskBranch()
        self.refine_model = Refine()

    def template(self, z: torch.Tensor) -> torch.Tensor:
        """Template feature zf (1, 256, 7, 7) of a 127x127 crop."""
        return self.features(z)[1]

    def search(self, x: torch.Tensor, zf: torch.Tensor) -> SearchOutput:
        """Everything the tracking step needs from a 255x255 search crop. The plain mask head's output is
        not computed: the sharp tracker uses the refinement module instead."""
        levels, search = self.features(x)
        return SearchOutput(levels, search, self.rpn_model.cls(zf, search), self.rpn_model.loc(zf, search),
                            self.mask_model.mask.forward_corr(zf, search))

    def refine(self, out: SearchOutput, row: int, col: int) -> torch.Tensor:
        return self.refine_model(out.levels, out.corr_feature, row, col)


# --- checkpoints -------------------------------------------------------------------------------------

def _is_tensor_mapping(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(isinstance(v, torch.Tensor) for v in value.values())


def siammask_state(loaded: Any, path: Path) -> Dict[str, torch.Tensor]:
    """The state dict inside a loaded checkpoint: an optional 'state_dict' entry, optional 'module.' prefix."""
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not _is_tensor_mapping(loaded):
        raise CheckpointError(f"{path} is not a SiamMask checkpoint: expected a state dict of tensors "
                              f"(optionally under 'state_dict'), got {type(loaded).__name__}")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in loaded.items()}


def _names(keys: List[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return f"{shown}, ... ({len(keys)} in all)" if len(keys) > limit else shown


def check_state_dict(state: Mapping[str, torch.Tensor], model: nn.Module, where: str) -> Dict[str, torch.Tensor]:
    """``state`` completed for a strict load into ``model``, or a CheckpointError naming the bad keys.

    Only BatchNorm's ``num_batches_tracked`` counters may be absent (older torch did not save them; eval
    mode never reads them): they keep the model's own value.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {_names(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_names(unexpected)}")
        raise CheckpointError(f"{where} is not a SiamMask (sharp) checkpoint: " + "; ".join(parts))
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    if wrong:
        raise CheckpointError(f"{where} has tensors of the wrong shape: {_names(wrong)}")
    return {k: state.get(k, v) for k, v in expected.items()}


def read_checkpoint(path: str | Path) -> Dict[str, torch.Tensor]:
    """Load a checkpoint file as a flat state dict with ``weights_only=True`` (no code from the file runs)."""
    return siammask_state(load_weights_file(path), Path(path))


def load_weights_file(path: str | Path) -> Any:
    """What a weights file holds, loaded with ``weights_only=True``; a CheckpointError if it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path} holds more than tensors and was refused by torch.load(weights_only=True) ({exc}). If you "
            "trust the file, re-save its state dict: torch.save(torch.load(p, weights_only=False)"
            "['state_dict'], 'siammask_state.pth')") from exc
    except (OSError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"cannot read weights file {path} (truncated or not a torch file?): {exc}") from exc
    return loaded


def load_siammask(path: str | Path) -> SiamMaskSharp:
    """SiamMaskSharp with the weights of ``path``, loaded strictly, in eval mode on the CPU."""
    model = SiamMaskSharp()
    state = check_state_dict(read_checkpoint(path), model, str(path))
    model.load_state_dict(state, strict=True)
    return model.eval()


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
