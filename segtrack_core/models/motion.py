"""Target motion between two frames: sparse optical flow on the target's own pixels (median flow) predicts
its position; dense flow around it tells it from the static surroundings it passes (a look-alike, a shadow)."""

from __future__ import annotations

import cv2
import numpy as np


def grid_points(mask: np.ndarray, count: int) -> np.ndarray:
    """About ``count`` points (N, 1, 2) float32 on a regular grid over ``mask``'s true pixels."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return np.zeros((0, 1, 2), np.float32)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    step = max(1.0, np.sqrt((x1 - x0) * (y1 - y0) / max(count, 1)))
    gx, gy = np.meshgrid(np.arange(x0 + step / 2, x1, step), np.arange(y0 + step / 2, y1, step))
    gx, gy = gx.ravel(), gy.ravel()
    inside = mask[gy.astype(int), gx.astype(int)]
    return np.stack([gx[inside], gy[inside]], axis=-1).astype(np.float32)[:, None, :]


def median_flow(previous: np.ndarray, current: np.ndarray, points: np.ndarray, window: int,
                max_error: float, min_points: int) -> tuple[float, float] | None:
    """Median displacement of ``points`` from gray ``previous`` to gray ``current`` (pyramidal Lucas-Kanade),
    over the points whose forward-backward error is at most ``max_error`` pixels and the median's; None when
    fewer than ``min_points`` survive (texture-less or occluded target)."""
    if len(points) < min_points:
        return None
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)
    size = (window, window)
    forward, ok1, _ = cv2.calcOpticalFlowPyrLK(previous, current, points, None, winSize=size, maxLevel=3,
                                               criteria=criteria)
    backward, ok2, _ = cv2.calcOpticalFlowPyrLK(current, previous, forward, None, winSize=size, maxLevel=3,
                                                criteria=criteria)
    error = np.linalg.norm((backward - points)[:, 0], axis=1)
    good = (ok1[:, 0] == 1) & (ok2[:, 0] == 1) & (error <= max_error)
    if good.sum() < min_points:
        return None
    good &= error <= np.median(error[good])
    moved = (forward - points)[good, 0]
    return float(np.median(moved[:, 0])), float(np.median(moved[:, 1]))


def motion_evidence(flow: np.ndarray, target_flow: tuple[float, float], target: np.ndarray,
                    background: np.ndarray, min_separation: float, min_agreement: float) -> np.ndarray | None:
    """Evidence in [-1, 0] against the pixels that moved with the target's surroundings rather than with the
    target, from each pixel's displacement ``flow`` (H, W, 2) since the last frame.

    ``target`` marks where the target's last mask has moved to: no evidence there, so a part that stops
    (a planted foot) stays the target, and only growth into surroundings is held back. The surroundings'
    motion is the median over ``background``. None when motion tells nothing: the two motions closer than
    ``min_separation`` pixels, or less than ``min_agreement`` of the target's pixels moving with the target
    (a non-rigid or texture-less target, whose median motion describes it badly)."""
    if not background.any() or not target.any():
        return None
    tx, ty = target_flow
    sx, sy = np.median(flow[background], axis=0)
    separation = float((tx - sx) ** 2 + (ty - sy) ** 2)
    if separation < min_separation ** 2:
        return None
    # |f - s|^2 - |f - t|^2 is linear in the flow f.
    u, v = flow[..., 0], flow[..., 1]
    closer_to_target = (2 * (tx - sx) * u + 2 * (ty - sy) * v + (sx * sx + sy * sy - tx * tx - ty * ty)) / separation
    evidence = np.clip(closer_to_target, -1.0, 0.0)
    if float((evidence[target] > -0.5).mean()) < min_agreement:
        return None
    evidence[target] = 0.0
    return evidence
