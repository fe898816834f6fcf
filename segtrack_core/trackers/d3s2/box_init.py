"""D3S2's initialisation from a box: memories from a proxy mask (GrabCut inside the box), then segmentation
passes on the first frame give the mask the models are learned from."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ...geometry import mask_to_box
from ...models.gim import GeometricallyInvariantModel, topk_similarity
from ...prompts import box_proxy_mask
from ...types import Box
from .config import BoxInitConfig, GimConfig


def least_background_like(candidates: torch.Tensor, bg_similarity: torch.Tensor, keep: float) -> torch.Tensor:
    """The fraction ``keep`` of the candidate cells least similar to the background: mask cells that look
    like known background are not learned as target."""
    if keep <= 0:
        return torch.zeros_like(candidates)
    if keep >= 1 or int(candidates.sum()) <= 4:
        return candidates
    return candidates & (bg_similarity <= torch.quantile(bg_similarity[candidates], keep))


def initial_cells(coverage: torch.Tensor, gim_config: GimConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """First-frame (foreground, background) cells from a mask's cell coverage: a thin target that covers
    no cell well still gets its best-covered cells as foreground."""
    fg_cells = coverage >= min(gim_config.init_fg_coverage, float(coverage.max()) * 0.9)
    return fg_cells, coverage <= gim_config.init_bg_coverage


def bootstrap_memories(gim: GeometricallyInvariantModel, descriptor: torch.Tensor, proxy: torch.Tensor,
                       box: torch.Tensor, config: BoxInitConfig, gim_config: GimConfig) -> None:
    """Memories for a box initialisation: background from outside the box; foreground from the proxy
    cells, less the fraction most similar to that background (water or foliage inside the box)."""
    candidates, _ = initial_cells(proxy, gim_config)
    _, bg_cells = initial_cells(box, gim_config)
    background = gim.gather(descriptor, bg_cells)
    if background.shape[0]:
        bg_similarity = topk_similarity(descriptor, background, gim_config.top_k)
        candidates = least_background_like(candidates, bg_similarity, config.keep)
    gim.initialize(descriptor, candidates, bg_cells)


def extends_toward_box(before: Box, after: Box, box: Box, min_gain: float) -> bool:
    """Whether a mask whose box goes from ``before`` to ``after`` fills the given (tight) ``box`` better:
    neither side shrinks and the area grows by at least ``min_gain`` of the box's area. A mask that
    covers more of its object's extent has recovered parts; one that shrinks has lost some."""
    return (after.w >= before.w and after.h >= before.h
            and after.w * after.h - before.w * before.h >= min_gain * box.w * box.h)


def box_init_mask(frame: np.ndarray, box: Box, box_mask: np.ndarray, config: BoxInitConfig,
                  refine_pass: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The first-frame mask for ``box`` (``box_mask`` its pixels): GrabCut's proxy inside it, refined by
    ``refine_pass`` (learn the memories from a mask, segment the frame) up to ``config.passes`` times, then
    by GrabCut started from that mask where the result fills the box better."""
    proxy = box_mask
    rect = tuple(int(round(v)) for v in box.as_tuple())
    grabcut = box_proxy_mask(frame, rect, config.grabcut_max_side, config.grabcut_iterations,
                             runs=config.grabcut_runs)
    if grabcut is not None and (grabcut & proxy).sum() >= config.min_overlap * proxy.sum():
        proxy = grabcut & proxy
    mask = proxy
    for _ in range(config.passes):
        refined = refine_pass(mask) & box_mask
        if refined.sum() < config.min_overlap * proxy.sum():
            break
        mask = refined
    if config.final_grabcut_gain <= 1.0 and mask.any():
        # Colour models started from the segmentation rather than from the whole box: background enclosed
        # by the object (water between a swan's neck and back) goes, thin parts the coarse cells lost return.
        final = box_proxy_mask(frame, rect, config.grabcut_max_side, config.grabcut_iterations, estimate=mask,
                               runs=config.grabcut_runs)
        final = None if final is None else final & box_mask
        if final is not None and final.any() and extends_toward_box(mask_to_box(mask), mask_to_box(final), box,
                                                                    config.final_grabcut_gain):
            mask = final
    return mask
