"""The default backend: D3S2's decomposition with every part learned online from the first frame.

- GEM: a discriminatively optimised filter on PCA-reduced backbone features (ATOM's online classifier,
  as in D3S2), trained by conjugate gradient on the augmented first frame and reliable frames, with
  hard-negative updates when a distractor peak appears. Its peak localises the target and gives the
  target location channel.
- GIM: foreground/background feature memories from the initial mask give the foreground-similarity and
  posterior channels; reliable frames add background hard negatives and the target cells least like the
  background.
- Fusion and refinement: the channels are fused into a coarse foreground probability, which a colour
  posterior and a guided filter on the image refine to a full-resolution mask.
- Decoupled scale: the tracked box keeps the offset and size ratio it had to the mask's box on the first
  frame; its size changes only on frames whose mask agrees with it (area and per-frame size step), so
  occlusions, partial masks and masks that bleed into the background neither shrink nor grow the search
  region, and those frames teach the models nothing.
- The reported box is the mask's box when the first-frame mask covered the given box, else the tracked
  box (a box initialisation whose mask covers only part of the object), centred by the GEM.
- Motion: a constant-velocity prediction centres the search region; when the score is too weak to trust
  the GEM peak (occlusion) the tracker coasts on it. A run of weak frames, not one, means lost.
- A box initialisation uses a proxy mask from the box, refined by segmentation passes on the first
  frame, as in D3S2; a box too small to cut (shorter side under ``small_box_side``) is its own mask.
- While lost, the GEM scans a larger region at the same feature scale.

The segmentation step (GIM memories, box initialisation's first mask, each frame's mask) is a component,
``segmentation.MaskHead``: the default ``handmade`` head does all of the above without offline training; the
``learned`` head (``segmentation.head: learned``, parameter set ``d3s2/learned``) is D3S2's offline-trained
GIM feature adjustment and refinement pathway (``nets.d3s2_head``, trained by ``segtrack train``), with box
initialisation from memories of the box.

The package: ``config`` (settings by part), ``state`` (one target's state), ``segmentation`` (the mask
heads), ``box_init`` (the hand-made head's initialisation from a box), ``tracker`` (the algorithm).
"""

from .config import D3S2Config
from .tracker import D3S2Tracker

__all__ = ["D3S2Config", "D3S2Tracker"]
