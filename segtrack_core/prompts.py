"""Prompts -> initial target mask, by GrabCut: clicks (foreground/background points), and the proxy mask a
box initialisation starts from."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from .types import PointsTarget
from .validation import validate_frame, validate_target

# A single click says nothing about the object's size: assume it spans at least this fraction of the
# image's shorter side around the points.
MIN_EXTENT_FRACTION = 0.4
# The GrabCut rectangle extends the points' bounding box by this fraction of its size on each side
# (clicks are rarely on the object's extremities).
RECT_PADDING = 0.1
SEED_RADIUS_FRACTION = 0.01
GRABCUT_ITERATIONS = 4
WORK_SIDE = 320


def labeled_foreground(labels: np.ndarray) -> np.ndarray:
    """Pixels that GrabCut ``labels`` (GC_* per pixel) put in the foreground, certain or probable."""
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def grabcut_vote(image: np.ndarray, labels: np.ndarray, iterations: int, runs: int) -> np.ndarray | None:
    """Foreground (bool) by a majority vote of ``runs`` GrabCut runs from ``labels`` (GC_* per pixel), or
    None when the labels hold no background or no foreground pixel: GrabCut has no colour model to learn
    then (OpenCV fails with an assertion).

    GrabCut's k-means starts from OpenCV's random state, and its result varies with it: runs from fixed
    seeds give the same mask for the same input whatever ran before."""
    foreground = labeled_foreground(labels)
    if foreground.all() or not foreground.any():
        return None
    image = np.ascontiguousarray(image)

    def run_from(rng_seed: int) -> np.ndarray:
        cv2.setRNGSeed(rng_seed)  # OpenCV's RNG is per thread: each run starts from its own seed
        work = labels.copy()
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.grabCut(image, work, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
        return (work == cv2.GC_FGD) | (work == cv2.GC_PR_FGD)

    # GrabCut releases the GIL: the runs share the cores.
    with ThreadPoolExecutor(max_workers=runs) as pool:
        votes = sum(pool.map(run_from, range(runs)), np.zeros(labels.shape, np.int32))
    return 2 * votes > runs


def points_rect(foreground: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Pixel rectangle (x0, y0, x1, y1), exclusive end, around the foreground points, clipped to the image."""
    height, width = shape
    lo, hi = foreground.min(axis=0), foreground.max(axis=0)
    size = np.maximum((hi - lo) * (1.0 + 2.0 * RECT_PADDING), MIN_EXTENT_FRACTION * min(height, width))
    center = (lo + hi) / 2.0
    x0, y0 = np.floor(center - size / 2.0).astype(int)
    x1, y1 = np.ceil(center + size / 2.0).astype(int) + 1
    return max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)


def points_to_mask(frame: np.ndarray, points: PointsTarget) -> np.ndarray:
    """HxW bool mask of the object under the foreground points (pixel x, y), excluding background points.

    GrabCut runs on a window around a padded rectangle about the foreground points, with small disks
    around the clicks as certain foreground/background. Only the connected regions containing a
    foreground click are kept. If GrabCut keeps nothing, the padded rectangle itself is the mask.
    """
    frame = validate_frame(frame)
    height, width = frame.shape[:2]
    points = validate_target(points, (height, width))
    fg = np.array(points.foreground, dtype=np.float64)
    bg = np.array(points.background, dtype=np.float64).reshape(-1, 2)

    x0, y0, x1, y1 = points_rect(fg, (height, width))
    # GrabCut only sees a window twice the rectangle's size: enough background to model, bounded cost.
    margin_x, margin_y = (x1 - x0) // 2, (y1 - y0) // 2
    wx0, wy0 = max(x0 - margin_x, 0), max(y0 - margin_y, 0)
    wx1, wy1 = min(x1 + margin_x, width), min(y1 + margin_y, height)

    # Outside the rectangle is only probably background, so the object may extend past a guessed
    # rectangle; the window's outer edge (where it is not the image's edge) is certain background.
    seeds = np.full((wy1 - wy0, wx1 - wx0), cv2.GC_PR_BGD, dtype=np.uint8)
    seeds[y0 - wy0:y1 - wy0, x0 - wx0:x1 - wx0] = cv2.GC_PR_FGD
    border = 2
    if wy0 > 0:
        seeds[:border] = cv2.GC_BGD
    if wx0 > 0:
        seeds[:, :border] = cv2.GC_BGD
    if wy1 < height:
        seeds[-border:] = cv2.GC_BGD
    if wx1 < width:
        seeds[:, -border:] = cv2.GC_BGD
    radius = max(2, int(round(SEED_RADIUS_FRACTION * min(height, width))))
    offset = np.array([wx0, wy0], dtype=np.float64)
    for point in bg:
        center = tuple(int(v) for v in np.round(point - offset))
        cv2.circle(seeds, center, radius, int(cv2.GC_BGD), thickness=-1)
    for point in fg:
        center = tuple(int(v) for v in np.round(point - offset))
        cv2.circle(seeds, center, radius, int(cv2.GC_FGD), thickness=-1)

    window = frame[wy0:wy1, wx0:wx1]
    # GrabCut's cost grows with the pixel count: segment a downscaled window, upscale the labels.
    scale = min(1.0, WORK_SIDE / max(window.shape[:2]))
    if scale < 1.0:
        small_size = (max(1, round(window.shape[1] * scale)), max(1, round(window.shape[0] * scale)))
        work = cv2.resize(window, small_size, interpolation=cv2.INTER_AREA)
        work_seeds = cv2.resize(seeds, small_size, interpolation=cv2.INTER_NEAREST)
    else:
        work, work_seeds = np.ascontiguousarray(window), seeds
    voted = grabcut_vote(work, work_seeds, GRABCUT_ITERATIONS, 1)
    # Seeds without background (the rectangle fills the image): the seeds are all there is to go by.
    work_mask = (labeled_foreground(work_seeds) if voted is None else voted).astype(np.uint8)
    window_mask = cv2.resize(work_mask, (seeds.shape[1], seeds.shape[0]), interpolation=cv2.INTER_NEAREST)
    window_mask[seeds == cv2.GC_FGD] = 1
    window_mask[seeds == cv2.GC_BGD] = 0

    _, labels = cv2.connectedComponents(window_mask, connectivity=8)
    fg_window = np.round(fg - offset).astype(int)
    fg_window[:, 0] = np.clip(fg_window[:, 0], 0, window_mask.shape[1] - 1)
    fg_window[:, 1] = np.clip(fg_window[:, 1], 0, window_mask.shape[0] - 1)
    clicked = np.unique(labels[fg_window[:, 1], fg_window[:, 0]])
    clicked = clicked[clicked != 0]

    mask = np.zeros((height, width), dtype=bool)
    if clicked.size:
        mask[wy0:wy1, wx0:wx1] = np.isin(labels, clicked)
    else:
        mask[y0:y1, x0:x1] = True
    return mask


def box_proxy_mask(frame: np.ndarray, box: tuple[int, int, int, int], max_side: int, iterations: int,
                   estimate: np.ndarray | None = None, runs: int = 1) -> np.ndarray | None:
    """Proxy mask for a box initialisation: GrabCut inside the box on a downscaled window (bool HxW), or
    None when the box leaves no background around it (or no foreground in it). An ``estimate`` (HxW bool,
    a first mask of the object) starts GrabCut's colour models from it instead of from the whole box. The
    box may reach past the image (a rotated box's bounding box does): only its part inside counts."""
    height, width = frame.shape[:2]
    # Clipped first: a negative start would wrap around in the slices below (the seeds then missed the box).
    x, y = max(box[0], 0), max(box[1], 0)
    w, h = min(box[0] + box[2], width) - x, min(box[1] + box[3], height) - y
    if w <= 0 or h <= 0:
        return None
    margin_x, margin_y = max(8, w // 4), max(8, h // 4)
    x0, y0 = max(0, x - margin_x), max(0, y - margin_y)
    x1, y1 = min(width, x + w + margin_x), min(height, y + h + margin_y)
    factor = min(1.0, max_side / max(x1 - x0, y1 - y0))
    window = frame[y0:y1, x0:x1]
    small = cv2.resize(window, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA) if factor < 1 else window
    rect = (int((x - x0) * factor), int((y - y0) * factor), max(2, int(w * factor)), max(2, int(h * factor)))
    if rect[0] <= 0 and rect[1] <= 0 and rect[0] + rect[2] >= small.shape[1] and rect[1] + rect[3] >= small.shape[0]:
        return None  # the box fills the image: no background to learn from
    if estimate is None:
        initial = np.zeros(small.shape[:2], np.uint8)
        initial[rect[1]:rect[1] + rect[3], rect[0]:rect[0] + rect[2]] = cv2.GC_PR_FGD
    else:
        initial = np.full((y1 - y0, x1 - x0), cv2.GC_BGD, np.uint8)
        initial[y - y0:y - y0 + h, x - x0:x - x0 + w] = cv2.GC_PR_BGD
        initial[estimate[y0:y1, x0:x1]] = cv2.GC_PR_FGD
        if factor < 1:
            initial = cv2.resize(initial, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST)
    fg = grabcut_vote(small, initial, iterations, runs)
    if fg is None:
        return None
    fg = fg.astype(np.uint8)
    if factor < 1:
        fg = cv2.resize(fg, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
    mask = np.zeros((height, width), bool)
    mask[y0:y1, x0:x1] = fg.astype(bool)
    return mask
