"""D3S2's offline-trained segmentation pathways on a frozen EfficientNet-Lite backbone.

``SegmentationHead`` holds the GIM's feature adjustment (backbone stride-8 + stride-16 features -> unit-norm
keys, replacing the per-target PCA), the GIM's top-K similarity channels F and B against foreground and
background memories, and the refinement pathway that fuses F, B, their posterior and the target location
channel and upsamples with backbone skip features (strides 4 and 2) to a logit map the size of the crop.

Use (one crop ``x`` per row, from ``crops_to_input``)::

    feats = backbone_features(backbone, x)        # frozen, {2, 4, 8, 16: (N, C, H/s, W/s)}
    keys = head.keys(feats)                       # (N, D, H/8, W/8), unit norm
    memory = head.memories(keys, coverage)        # reference frame; coverage (N, H/8, W/8) in [0, 1]
    fg, bg = head.similarity(keys, memory.foreground, memory.background)   # each (N, H/8, W/8)
    logits = head.decode(feats, keys, fg, bg, location)                    # (N, 1, H, W)

Weight files hold the state dict plus ``__config__`` (the ``HeadConfig`` as plain numbers), so they load
with ``torch.load(weights_only=True)`` and no code is unpickled.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import from_dict, setting
from ..errors import CheckpointError, ConfigError
from .efficientnet_lite import PIXEL_MEAN, PIXEL_STD, EfficientNetLite

# Backbone taps the head reads and their channel counts in EfficientNet-Lite0.
FEATURE_STRIDES = (2, 4, 8, 16)
LITE0_CHANNELS = {2: 16, 4: 24, 8: 40, 16: 112}
CONFIG_KEY = "__config__"


@dataclass(frozen=True)
class HeadConfig:
    key_dim: int = setting(64, "channels of the adjusted (key) features the memories compare")
    key_hidden: int = setting(96, "hidden channels of the 1x1 feature adjustment")
    top_k: int = setting(3, "similarities averaged per memory (GIM top-K)")
    fg_coverage: float = setting(0.5, "a reference cell covered at least this much is foreground memory")
    bg_coverage: float = setting(0.05, "a reference cell covered at most this much is background memory")
    key_proj: int = setting(16, "channels of the keys' projection fed to the refinement pathway")
    channels8: int = setting(32, "refinement channels at stride 8")
    channels4: int = setting(16, "refinement channels at stride 4")
    channels2: int = setting(8, "refinement channels at stride 2")
    skip4: int = setting(16, "channels of the reduced stride-4 skip features")
    skip2: int = setting(8, "channels of the reduced stride-2 skip features")
    temperature: float = setting(10.0, "initial temperature of the F/B softmax posterior")
    prior_logit: float = setting(-2.0, "initial bias of the coarse logit (targets cover a small part of the crop)")
    skip_scale: float = setting(1 / 16, "factor on the raw stride-4 and -2 skip features (Lite0: std ~18)")
    in8: int = setting(LITE0_CHANNELS[8], "backbone channels at stride 8")
    in16: int = setting(LITE0_CHANNELS[16], "backbone channels at stride 16")
    in4: int = setting(LITE0_CHANNELS[4], "backbone channels at stride 4")
    in2: int = setting(LITE0_CHANNELS[2], "backbone channels at stride 2")

    def __post_init__(self) -> None:
        sizes = [f.name for f in dataclasses.fields(self) if f.type in ("int", int)]
        bad = [n for n in sizes if getattr(self, n) < 1]
        if bad:
            raise ConfigError(f"head config: {bad} must be >= 1")
        if not 0 <= self.bg_coverage < self.fg_coverage <= 1:
            raise ConfigError("head config: need 0 <= bg_coverage < fg_coverage <= 1")
        if self.temperature <= 0 or self.skip_scale <= 0:
            raise ConfigError("head config: temperature and skip_scale must be > 0")


class Memory(NamedTuple):
    """Memory vectors (N, M, D) with ``valid`` (N, M) marking the real entries of each row's padded memory."""

    vectors: torch.Tensor
    valid: torch.Tensor


class Memories(NamedTuple):
    foreground: Memory
    background: Memory


MemoryLike = Union[Memory, torch.Tensor]


def crops_to_input(crops_bgr: Union[np.ndarray, Sequence[np.ndarray], torch.Tensor],
                   device: Union[str, torch.device] = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 BGR crops (N, H, W, 3) -> normalised RGB backbone input (N, 3, H, W) on ``device``."""
    if not isinstance(crops_bgr, torch.Tensor):
        array = crops_bgr if isinstance(crops_bgr, np.ndarray) else np.stack(list(crops_bgr))
        crops_bgr = torch.from_numpy(np.ascontiguousarray(array))
    x = crops_bgr.to(device).flip(-1).permute(0, 3, 1, 2).to(dtype)
    x = (x - PIXEL_MEAN) / PIXEL_STD
    if x.device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def prepare_backbone(backbone: EfficientNetLite, device: Union[str, torch.device] = "cpu") -> EfficientNetLite:
    """Frozen inference copy of the backbone: BN folded, no gradients, eval mode, on ``device``."""
    backbone = backbone.fuse_batchnorm().to(device).eval()
    for p in backbone.parameters():
        p.requires_grad_(False)
    if torch.device(device).type == "cpu":
        backbone = backbone.to(memory_format=torch.channels_last)
    return backbone


def backbone_features(backbone: EfficientNetLite, x: torch.Tensor,
                      strides: Sequence[int] = FEATURE_STRIDES) -> Dict[int, torch.Tensor]:
    """The frozen backbone's features of a batch of crops, {stride: (N, C, H/stride, W/stride)} float32.

    Runs under no_grad (not inference_mode) so the head can train on the outputs."""
    with torch.no_grad():
        feats = backbone.features(x, strides=strides)
    return {s: f.float() for s, f in feats.items()}


def _normalized(x: torch.Tensor) -> torch.Tensor:
    # Per-cell unit norm times sqrt(C): scale-free input of about unit variance per channel.
    return F.normalize(x, dim=1) * math.sqrt(x.shape[1])


class ScaledConv2d(nn.Conv2d):
    """1x1 conv of an input multiplied by a fixed ``scale``, applied to the weight: the raw skip features
    (std ~18 in Lite0) come to about unit scale without a pass over the large stride-2/4 maps."""

    def __init__(self, cin: int, cout: int, scale: float) -> None:
        super().__init__(cin, cout, 1)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias)


def _conv(cin: int, cout: int, kernel: int = 3, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, padding=dilation * (kernel // 2), dilation=dilation)


def _as_memory(memory: MemoryLike, batch: int) -> Memory:
    if isinstance(memory, Memory):
        return memory
    vectors = memory if memory.dim() == 3 else memory[None].expand(batch, -1, -1)
    return Memory(vectors, torch.ones(vectors.shape[:2], dtype=torch.bool, device=vectors.device))


def compact(vectors: torch.Tensor, valid: torch.Tensor) -> Memory:
    """Memory (N, M, D) of the valid rows of ``vectors`` (N, L, D), M the largest valid count (padded)."""
    size = max(int(valid.sum(dim=1).max()), 1)
    order = torch.argsort((~valid).to(torch.uint8), dim=1, stable=True)[:, :size]
    picked = torch.gather(vectors, 1, order[..., None].expand(-1, -1, vectors.shape[-1]))
    return Memory(picked, torch.gather(valid, 1, order))


def topk_mean_similarity(keys: torch.Tensor, memory: Memory, k: int) -> torch.Tensor:
    """Mean of the top-k cosine similarities of each key (N, D, H, W) with its row's memory -> (N, H, W).

    Rows with fewer than k valid entries average the ones they have."""
    n, d, h, w = keys.shape
    queries = keys.flatten(2).transpose(1, 2)  # (N, HW, D)
    # An extra dimension (1 for queries, -4 for padding entries) drops padding below any cosine inside
    # the one matrix product.
    ones = queries.new_ones(n, h * w, 1)
    penalty = (memory.valid.to(queries.dtype) - 1.0)[..., None] * 4.0
    similarity = torch.cat([queries, ones], -1) @ torch.cat([memory.vectors, penalty], -1).transpose(1, 2)
    k = min(k, similarity.shape[-1])
    values = similarity.topk(k, dim=-1).values
    count = memory.valid.sum(dim=1).clamp(min=1, max=k)  # (N,)
    used = torch.arange(k, device=keys.device)[None, :] < count[:, None]  # (N, k)
    values = values * used[:, None, :]
    return (values.sum(-1) / count[:, None]).reshape(n, h, w)


class SegmentationHead(nn.Module):
    """GIM feature adjustment + similarity + refinement pathway (see the module docstring)."""

    def __init__(self, config: Optional[HeadConfig] = None) -> None:
        super().__init__()
        c = self.config = config or HeadConfig()
        self.adjust = nn.Sequential(nn.Conv2d(c.in8 + c.in16, c.key_hidden, 1), nn.ReLU(inplace=True),
                                    nn.Conv2d(c.key_hidden, c.key_dim, 1))
        self.log_temperature = nn.Parameter(torch.tensor(math.log(c.temperature)))
        self.key_projection = nn.Conv2d(c.key_dim, c.key_proj, 1)
        # F, B, posterior, location + projected keys; a dilated conv widens the view to the target's size.
        self.fuse8 = nn.Sequential(_conv(4 + c.key_proj, c.channels8), nn.ReLU(inplace=True),
                                   _conv(c.channels8, c.channels8, dilation=2), nn.ReLU(inplace=True),
                                   _conv(c.channels8, c.channels8), nn.ReLU(inplace=True))
        self.coarse = nn.Conv2d(c.channels8, 1, 1)
        self.reduce4 = ScaledConv2d(c.in4, c.skip4, c.skip_scale)
        self.fuse4 = nn.Sequential(_conv(c.channels8 + c.skip4, c.channels4), nn.ReLU(inplace=True))
        self.reduce2 = ScaledConv2d(c.in2, c.skip2, c.skip_scale)
        # Narrowed before upsampling: the stride-2 maps are the costly ones.
        self.narrow4 = nn.Conv2d(c.channels4, c.channels2, 1)
        self.fuse2 = nn.Sequential(_conv(c.channels2 + c.skip2, c.channels2), nn.ReLU(inplace=True))
        self.fine = _conv(c.channels2, 1)
        nn.init.constant_(self.coarse.bias, c.prior_logit)
        # The fine pathway starts as a no-op residual on the upsampled coarse logit.
        nn.init.zeros_(self.fine.weight)
        nn.init.zeros_(self.fine.bias)

    # --- GIM ------------------------------------------------------------------------------------
    def keys(self, feats: Mapping[int, torch.Tensor]) -> torch.Tensor:
        """Adjusted, unit-norm key features (N, D, H/8, W/8) from the backbone's stride-8 and -16 maps."""
        f8 = _normalized(feats[8])
        f16 = F.interpolate(_normalized(feats[16]), size=f8.shape[-2:], mode="bilinear", align_corners=False)
        return F.normalize(self.adjust(torch.cat([f8, f16], dim=1)), dim=1)

    def memories(self, keys: torch.Tensor, coverage: torch.Tensor) -> Memories:
        """Foreground/background memories of reference keys (N, D, h, w) given each cell's mask coverage
        (N, h, w): cells covered >= fg_coverage (else the best-covered cells) and cells covered <= bg_coverage
        (else the least-covered cells), padded to the grid size with a valid mask."""
        c = self.config
        vectors = keys.flatten(2).transpose(1, 2)  # (N, hw, D)
        cover = coverage.flatten(1).to(vectors.dtype)
        best = cover.max(dim=1, keepdim=True).values
        least = cover.min(dim=1, keepdim=True).values
        fg = (cover >= c.fg_coverage) | ((best < c.fg_coverage) & (cover >= best) & (best > 0))
        bg = (cover <= c.bg_coverage) | ((least > c.bg_coverage) & (cover <= least))
        # An all-empty reference has no foreground: keep one entry so shapes stay valid; F is then
        # meaningless and callers must not build memories from empty masks (the sampler never does).
        fg = fg | (~fg.any(dim=1, keepdim=True) & (cover >= best))
        return Memories(compact(vectors, fg), compact(vectors, bg))

    def similarity(self, keys: torch.Tensor, foreground: MemoryLike,
                   background: MemoryLike) -> Tuple[torch.Tensor, torch.Tensor]:
        """(F, B), each (N, h, w): mean top-K cosine similarity of each key with the foreground and
        background memories (a ``Memory``, or plain vectors (M, D) / (N, M, D) all valid)."""
        n = keys.shape[0]
        k = self.config.top_k
        return (topk_mean_similarity(keys, _as_memory(foreground, n), k),
                topk_mean_similarity(keys, _as_memory(background, n), k))

    # --- refinement -----------------------------------------------------------------------------
    def posterior(self, fg: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
        """Softmax of (F, B) scaled by the learned temperature: the foreground probability (N, h, w)."""
        return torch.sigmoid(self.log_temperature.exp() * (fg - bg))

    def decode(self, feats: Mapping[int, torch.Tensor], keys: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor,
               location: torch.Tensor) -> torch.Tensor:
        """Full-resolution foreground logits (N, 1, H, W) of the crop whose backbone features are ``feats``;
        ``location`` (N, h, w) is the target location channel (1 at the GEM peak)."""
        cues = torch.stack([fg, bg, self.posterior(fg, bg), location.to(fg.dtype)], dim=1)
        x8 = self.fuse8(torch.cat([cues, self.key_projection(keys)], dim=1))
        coarse = self.coarse(x8)
        x4 = F.interpolate(x8, size=feats[4].shape[-2:], mode="bilinear", align_corners=False)
        x4 = self.fuse4(torch.cat([x4, self.reduce4(feats[4])], dim=1))
        x2 = F.interpolate(self.narrow4(x4), size=feats[2].shape[-2:], mode="bilinear", align_corners=False)
        x2 = self.fuse2(torch.cat([x2, self.reduce2(feats[2])], dim=1))
        logits2 = self.fine(x2) + F.interpolate(coarse, size=x2.shape[-2:], mode="bilinear", align_corners=False)
        size = (feats[2].shape[-2] * 2, feats[2].shape[-1] * 2)
        return F.interpolate(logits2, size=size, mode="bilinear", align_corners=False)

    def forward(self, reference_feats: Mapping[int, torch.Tensor], reference_coverage: torch.Tensor,
                test_feats: Mapping[int, torch.Tensor], location: torch.Tensor) -> torch.Tensor:
        """Training path: memories from the reference crops, logits (N, 1, H, W) of the test crops."""
        memory = self.memories(self.keys(reference_feats), reference_coverage)
        keys = self.keys(test_feats)
        fg, bg = self.similarity(keys, memory.foreground, memory.background)
        return self.decode(test_feats, keys, fg, bg, location)


def head_config_dict(config: HeadConfig) -> Dict[str, Union[int, float]]:
    return dataclasses.asdict(config)


def head_state(head: SegmentationHead) -> dict:
    """What a weights file holds: the state dict (tensors) plus the config as plain numbers."""
    state = {k: v.detach().cpu().clone() for k, v in head.state_dict().items()}
    state[CONFIG_KEY] = head_config_dict(head.config)
    return state


def save_head(head: SegmentationHead, path: Union[str, Path]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(head_state(head), path)
    return path


def load_head(path: Union[str, Path], device: Union[str, torch.device] = "cpu") -> SegmentationHead:
    """A head from a weights file written by ``save_head``, strictly checked, in eval mode.

    Raises CheckpointError (a ConfigError) for an unreadable file, a missing or bad ``__config__``, or a
    key set / shapes that do not match the network the config builds."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come as many types; the file is unusable either way
        raise CheckpointError(f"cannot load D3S2 head weights {path}: {exc}") from exc
    return head_from_state(state, path).to(device)


def is_head_state(state: object) -> bool:
    """Whether a loaded weights file is a head's (``save_head`` writes a ``__config__`` entry)."""
    return isinstance(state, Mapping) and CONFIG_KEY in state


def head_from_state(state: object, path: Union[str, Path]) -> SegmentationHead:
    """The head a loaded weights file describes, strictly checked, in eval mode, on the CPU."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a D3S2 head weights file (a {type(state).__name__}, not a mapping)")
    state = dict(state)
    raw_config = state.pop(CONFIG_KEY, None)
    if not isinstance(raw_config, Mapping):
        raise CheckpointError(f"{path}: not a D3S2 head weights file (no {CONFIG_KEY} entry); "
                              f"keys {sorted(state)[:5]}")
    try:
        config = from_dict(HeadConfig, raw_config, where=f"{path} {CONFIG_KEY}")
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from exc
    head = SegmentationHead(config)
    expected = head.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path} does not match the D3S2 head: missing keys {missing[:8]}, "
                              f"unexpected keys {unexpected[:8]}")
    wrong = [f"{k} {tuple(getattr(state[k], 'shape', ()))} != {tuple(v.shape)}" for k, v in expected.items()
             if not isinstance(state[k], torch.Tensor) or state[k].shape != v.shape]
    if wrong:
        raise CheckpointError(f"{path} does not match the D3S2 head: wrong shapes {wrong[:5]}")
    head.load_state_dict(state, strict=True)
    return head.eval()
