"""Search-region sampling and the tracking descriptor built from backbone features.

The search region is a square of side ``search_scale * sqrt(w * h)`` around the target, resampled to a
fixed ``input_size``. The descriptor at stride 8 concatenates the stride-8 features with upsampled
stride-16 features (each L2-normalised), reduced by a PCA learned on the first frame, and L2-normalised
again: GEM and GIM both work on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..nets.efficientnet_lite import PIXEL_MEAN, PIXEL_STD, EfficientNetLite

DESCRIPTOR_STRIDE = 8


@dataclass(frozen=True)
class SearchRegion:
    """A square image region resampled to ``size`` x ``size`` pixels.

    Continuous image coordinates x (pixel i spans [i, i+1)) map to crop coordinates
    u = (x - cx) * scale + size / 2.
    """

    cx: float
    cy: float
    side: float
    size: int

    @property
    def scale(self) -> float:
        return self.size / self.side

    def image_to_crop_matrix(self) -> np.ndarray:
        """2x3 affine from image pixel indices to crop pixel indices (cv2 convention: centers integer)."""
        s = self.scale
        return np.array([[s, 0.0, (0.5 - self.cx) * s + self.size / 2 - 0.5],
                         [0.0, s, (0.5 - self.cy) * s + self.size / 2 - 0.5]])

    def cell_to_image(self, fx: float, fy: float, stride: int) -> tuple[float, float]:
        """Continuous image point at feature cell index (fx, fy) (cell centers at integers)."""
        u, v = (fx + 0.5) * stride, (fy + 0.5) * stride
        return ((u - self.size / 2) / self.scale + self.cx, (v - self.size / 2) / self.scale + self.cy)

    def image_to_cell(self, x: float, y: float, stride: int) -> tuple[float, float]:
        u = (x - self.cx) * self.scale + self.size / 2
        v = (y - self.cy) * self.scale + self.size / 2
        return (u / stride - 0.5, v / stride - 0.5)

    def image_index_to_cell_matrix(self, stride: int) -> np.ndarray:
        """2x3 affine from image pixel indices to cell indices (both with centers at integers)."""
        a = self.scale / stride
        bx = ((0.5 - self.cx) * self.scale + self.size / 2) / stride - 0.5
        by = ((0.5 - self.cy) * self.scale + self.size / 2) / stride - 0.5
        return np.array([[a, 0.0, bx], [0.0, a, by]])

    def resampled_window_to_cell_matrix(self, x0: int, y0: int, fx: float, fy: float, stride: int) -> np.ndarray:
        """2x3 affine from the pixel indices of an image window starting at (x0, y0) and resampled by
        (fx, fy) window pixels per pixel, to cell indices (for cv2.warpAffine with WARP_INVERSE_MAP)."""
        to_window = np.array([[fx, 0, x0 + 0.5 * fx - 0.5], [0, fy, y0 + 0.5 * fy - 0.5], [0, 0, 1]])
        return (np.vstack([self.image_index_to_cell_matrix(stride), [0, 0, 1]]) @ to_window)[:2]

    def crop(self, frame: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        return cv2.warpAffine(frame, self.image_to_crop_matrix(), (self.size, self.size),
                              flags=interpolation, borderMode=cv2.BORDER_REPLICATE)


@dataclass(frozen=True)
class Projection:
    """A target's PCA of its first-frame descriptors: the dimensionality reduction used from then on."""

    mean: torch.Tensor  # (C_in,)
    matrix: torch.Tensor  # (C_in, D)


class DescriptorExtractor:
    """Backbone on a given device and precision -> raw stride-8 features; their projection to the tracking
    descriptor is per target (``Projection``), so the extractor holds no target state."""

    def __init__(self, backbone: EfficientNetLite, feature_dim: int, device: torch.device,
                 half: bool) -> None:
        self.backbone = backbone.fuse_batchnorm().to(device)
        self.device = device
        self.dtype = torch.float16 if half else torch.float32
        if half:
            self.backbone = self.backbone.half()
        if device.type == "cpu":
            self.backbone = self.backbone.to(memory_format=torch.channels_last)
        self.feature_dim = feature_dim

    def _to_tensor(self, crops_bgr: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(crops_bgr)).to(self.device)
        x = x.flip(-1).permute(0, 3, 1, 2).to(self.dtype)  # BGR -> RGB, NCHW
        x = (x - PIXEL_MEAN) / PIXEL_STD
        if self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def raw(self, crop_bgr: np.ndarray) -> torch.Tensor:
        """Concatenated, per-level normalised stride-8 features (C_in, H/8, W/8), float32."""
        return self.raw_batch(crop_bgr[None])[0]

    @torch.inference_mode()
    def features(self, crops_bgr: np.ndarray, strides: tuple[int, ...] = (8, 16)) -> dict[int, torch.Tensor]:
        """Backbone features of N same-sized crops (N, H, W, 3) in one pass: {stride: (N, C, H/s, W/s)}."""
        return {k: v.float() for k, v in self.backbone.features(self._to_tensor(crops_bgr), strides=strides).items()}

    def raw_batch(self, crops_bgr: np.ndarray) -> torch.Tensor:
        """``raw`` of N same-sized crops (N, H, W, 3) in one backbone pass: (N, C_in, H/8, W/8)."""
        return raw_descriptor(self.features(crops_bgr))

    def fit_projection(self, raw: torch.Tensor) -> Projection:
        """PCA of the first frame's raw features."""
        vectors = raw.flatten(1).t()
        mean = vectors.mean(dim=0)
        _, _, vh = torch.linalg.svd(vectors - mean, full_matrices=False)
        return Projection(mean, vh[: self.feature_dim].t().contiguous())


def raw_descriptor(features: dict[int, torch.Tensor]) -> torch.Tensor:
    """Concatenated, per-level normalised stride-8 and upsampled stride-16 features (N, C_in, H/8, W/8)."""
    f8 = F.normalize(features[8], dim=1)
    f16 = F.interpolate(features[16], size=f8.shape[-2:], mode="bilinear", align_corners=False)
    return torch.cat([f8, F.normalize(f16, dim=1)], dim=1).contiguous()


def project(raw: torch.Tensor, projection: Projection) -> torch.Tensor:
    """(C_in, H, W) raw features -> (D, H, W) unit-norm descriptor."""
    channels, height, width = raw.shape
    reduced = (raw.flatten(1).t() - projection.mean) @ projection.matrix
    return F.normalize(reduced, dim=1).t().reshape(-1, height, width)
