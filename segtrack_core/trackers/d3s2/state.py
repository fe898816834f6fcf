"""One target's D3S2 state: everything tracking it needs besides the model (backbone) and the config.

``initialize`` builds a new state and swaps it in whole, so a failure half-way keeps the current target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...models.features import Projection
from ...models.gem import DiscriminativeFilter
from ...models.gim import GeometricallyInvariantModel
from ...models.refine import ColorModel
from ...types import Box, TrackState


@dataclass
class D3S2State:
    projection: Projection  # PCA of the first frame's features
    gem: DiscriminativeFilter
    gim: GeometricallyInvariantModel
    color: ColorModel | None  # the hand-made mask head's colour histograms
    center: tuple[float, float]
    size: tuple[float, float]  # inherent target size (w, h)
    fill_ratio: float = 1.0  # mask area / (w * h) of the inherent size
    peak_reference: float = 1.0  # running GEM peak on reliable frames
    size_from_mask: tuple[float, float] = (1.0, 1.0)  # inherent size / mask box size, fixed at initialisation
    mask_aspect: float = 1.0  # mask box width / height on the first frame
    state: TrackState = TrackState.TRACKING
    velocity: tuple[float, float] = (0.0, 0.0)  # pixels per frame
    weak_frames: int = 0  # consecutive weak frames: scored below lost_threshold, or a far jump not taken
    previous_gray: np.ndarray | None = None  # last frame, gray, for the target's optical flow
    previous_mask: np.ndarray | None = None  # the target's pixels on it (empty while lost)

    def slow_down(self, decay: float) -> None:
        """A frame without a trusted position: the velocity decays towards standing still."""
        self.velocity = (decay * self.velocity[0], decay * self.velocity[1])

    def box(self) -> Box:
        """The tracked box: the inherent size around the centre."""
        return Box(self.center[0] - 0.5 * self.size[0], self.center[1] - 0.5 * self.size[1], *self.size)

    def mask_measures_scale(self, fit: float) -> bool:
        """Whether the first-frame mask covered the given target (its box within ``fit`` per side), so that
        the mask's box is the object's box."""
        return box_fits(self.size_from_mask, fit)


def box_fits(ratios: tuple[float, float], fit: float) -> bool:
    """Whether two boxes whose sides have these ratios match within ``fit`` per side."""
    return all(1.0 / fit <= r <= fit for r in ratios)
