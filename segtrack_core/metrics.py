"""Accuracy measures: DAVIS region similarity J and contour accuracy F, VOT polygon overlap.

Pure functions on numpy arrays. J and F follow the DAVIS benchmark's definitions and empty-mask
conventions; polygon IoU is computed exactly (polygon clipping), optionally bounded by the image as the
VOT toolkit does.
"""

from __future__ import annotations

import math
from typing import Optional

import cv2
import numpy as np

DAVIS_BOUNDARY_THRESHOLD = 0.008  # fraction of the image diagonal


def region_similarity(pred: np.ndarray, gt: np.ndarray) -> float:
    """J: intersection over union of two HxW masks (nonzero = foreground); 1.0 when both are empty."""
    pred, gt = _as_bool_pair(pred, gt)
    union = np.count_nonzero(pred | gt)
    if union == 0:
        return 1.0
    return np.count_nonzero(pred & gt) / union


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """1-pixel-wide boundary of a mask, as DAVIS's seg2bmap builds it.

    A pixel is on the boundary when it differs from its east, south or south-east neighbour; the last
    row compares only with the east neighbour, the last column only with the south one, and the
    bottom-right pixel is never a boundary pixel.
    """
    seg = np.asarray(mask) != 0
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    boundary = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    boundary[-1, :] = seg[-1, :] ^ east[-1, :]
    boundary[:, -1] = seg[:, -1] ^ south[:, -1]
    boundary[-1, -1] = False
    return boundary


def boundary_tolerance(shape: tuple[int, int], bound_th: float = DAVIS_BOUNDARY_THRESHOLD) -> int:
    """Match radius in pixels: ``bound_th`` itself if >= 1, else ceil(bound_th * image diagonal)."""
    if bound_th >= 1:
        return int(bound_th)
    return int(math.ceil(bound_th * math.hypot(shape[0], shape[1])))


def disk(radius: int) -> np.ndarray:
    """(2r+1)x(2r+1) uint8 structuring element of the points with x^2 + y^2 <= r^2."""
    offsets = np.arange(-radius, radius + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius ** 2).astype(np.uint8)


def contour_accuracy(pred: np.ndarray, gt: np.ndarray, bound_th: float = DAVIS_BOUNDARY_THRESHOLD) -> float:
    """F: boundary F-measure of two HxW masks, as in the DAVIS benchmark.

    Boundary pixels of each mask count as matched when a boundary pixel of the other mask lies within
    a disk of radius ``boundary_tolerance``. Precision = matched predicted / predicted boundary pixels,
    recall = matched ground-truth / ground-truth boundary pixels, F = 2PR / (P + R). Conventions for
    empty boundaries: both empty -> 1; only one empty -> 0.
    """
    pred, gt = _as_bool_pair(pred, gt)
    pred_boundary = boundary_map(pred)
    gt_boundary = boundary_map(gt)
    n_pred = np.count_nonzero(pred_boundary)
    n_gt = np.count_nonzero(gt_boundary)
    if n_pred == 0 and n_gt == 0:
        return 1.0
    if n_pred == 0 or n_gt == 0:
        return 0.0
    kernel = disk(boundary_tolerance(pred.shape, bound_th))
    pred_near = cv2.dilate(pred_boundary.view(np.uint8), kernel).view(bool)
    gt_near = cv2.dilate(gt_boundary.view(np.uint8), kernel).view(bool)
    precision = np.count_nonzero(pred_boundary & gt_near) / n_pred
    recall = np.count_nonzero(gt_boundary & pred_near) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def polygon_area(points: np.ndarray) -> float:
    """Area of a simple polygon (Nx2 or flat x1,y1,x2,y2,...) by the shoelace formula."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return 0.0
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _signed_area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def is_convex(points: np.ndarray) -> bool:
    """True if the polygon's turns all have the same sign (collinear vertices allowed)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    edges = np.roll(pts, -1, axis=0) - pts
    turns = edges[:, 0] * np.roll(edges[:, 1], -1) - edges[:, 1] * np.roll(edges[:, 0], -1)
    scale = 1e-9 * max(float(np.abs(edges).max(initial=0.0)) ** 2, 1e-12)
    return bool(np.all(turns >= -scale) or np.all(turns <= scale))


def clip_polygon(subject: np.ndarray, clipper: np.ndarray) -> np.ndarray:
    """Part of polygon ``subject`` inside the convex polygon ``clipper`` (Sutherland-Hodgman), Mx2.

    ``subject`` may be non-convex: the result can then contain zero-width bridges, which do not change
    its area.
    """
    out = np.asarray(subject, dtype=np.float64).reshape(-1, 2)
    clip = np.asarray(clipper, dtype=np.float64).reshape(-1, 2)
    if _signed_area(clip) < 0:
        clip = clip[::-1]
    for a, b in zip(clip, np.roll(clip, -1, axis=0)):
        if len(out) == 0:
            break
        edge = b - a
        # >= 0: on the inner (left, for a positively oriented clipper) side of the edge a->b
        side = edge[0] * (out[:, 1] - a[1]) - edge[1] * (out[:, 0] - a[0])
        nxt = np.roll(out, -1, axis=0)
        side_nxt = np.roll(side, -1)
        kept = []
        for p, q, sp, sq in zip(out, nxt, side, side_nxt):
            if sp >= 0:
                kept.append(p)
            if (sp >= 0) != (sq >= 0):
                kept.append(p + (q - p) * (sp / (sp - sq)))
        out = np.array(kept, dtype=np.float64).reshape(-1, 2)
    return out


def polygon_iou(poly_a: np.ndarray, poly_b: np.ndarray,
                bounds: Optional[tuple[float, float]] = None) -> float:
    """Exact intersection over union of two polygons (Nx2 or flat), at least one of them convex.

    ``bounds`` = (width, height) first cuts both polygons to the image rectangle [0, W] x [0, H], as the
    VOT toolkit does. Returns 0 when the union has no area.
    """
    a = np.asarray(poly_a, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(poly_b, dtype=np.float64).reshape(-1, 2)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        return 0.0
    if bounds is not None:
        width, height = bounds
        image = np.array([[0.0, 0.0], [width, 0.0], [width, height], [0.0, height]])
        a, b = clip_polygon(a, image), clip_polygon(b, image)
    if is_convex(b):
        inter = polygon_area(clip_polygon(a, b)) if len(a) >= 3 and len(b) >= 3 else 0.0
    elif is_convex(a):
        inter = polygon_area(clip_polygon(b, a)) if len(a) >= 3 and len(b) >= 3 else 0.0
    else:
        raise ValueError("polygon_iou needs at least one convex polygon")
    union = polygon_area(a) + polygon_area(b) - inter
    if union <= 0:
        return 0.0
    return float(min(max(inter / union, 0.0), 1.0))


def _as_bool_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"masks must be 2-D and the same size, got {pred.shape} and {gt.shape}")
    return pred != 0, gt != 0


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """IoU of two axis-aligned boxes given as (x, y, w, h); 0 when the union has no area."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)  # 0, 0.05, ..., 1
OFF_TARGET_IOU = 0.1


def success_auc(ious: np.ndarray) -> float:
    """Area under the success curve: the mean over IoU thresholds 0, 0.05, ..., 1 of the share of frames
    whose IoU exceeds the threshold (OTB convention)."""
    ious = np.asarray(ious, dtype=np.float64)
    if ious.size == 0:
        return float("nan")
    return float(np.mean([(ious > t).mean() for t in SUCCESS_THRESHOLDS]))


def off_target_share(ious: np.ndarray) -> float:
    """Share of frames whose IoU is below ``OFF_TARGET_IOU`` (target lost or a wrong object followed)."""
    ious = np.asarray(ious, dtype=np.float64)
    return float((ious < OFF_TARGET_IOU).mean()) if ious.size else float("nan")
