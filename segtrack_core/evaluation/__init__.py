"""Evaluation: annotated sequences, scoring protocols, the lockstep run, reports and speed.

- ``datasets``: one class per folder layout (DAVIS, VOT) and ``discover_sequences`` over them.
- ``protocols``: one object per scoring protocol (``DavisProtocol``, ``VotProtocol``): the initial target
  and the scoring of saved predictions.
- ``predictions``: the saved raw output (``OUT/<backend>/<parameter set>/<sequence>/``).
- ``runner``: ``run`` (trackers in lockstep, predictions saved), ``score`` (saved predictions -> report),
  ``evaluate`` (both).
- ``report``: summaries, results.json / sequences.csv / frames.csv, the text table.
- ``speed``: per-frame latency (``segtrack bench``).

Trackers are built elsewhere (``segtrack_core.registry.make_tracker``).
"""
