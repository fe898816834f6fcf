"""Offline training of the D3S2 segmentation head (``segtrack train``); imports no ROS.

- ``datasets``: the training sets on disk (video clips, image/instance-mask sets) and the validation split;
- ``pairs``: seeded reference/test pairs in the tracker's crop geometry, and the validation pairs;
- ``loop``: ``TrainConfig`` and ``train`` (checkpoints, resume, DistributedDataParallel, report).

Import from the submodules: the package itself loads nothing, so the CLI can read the defaults cheaply.
"""
