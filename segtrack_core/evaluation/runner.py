"""Run trackers over annotated sequences, save what they predict, then score the saved predictions.

``run`` plays every sequence once and gives each decoded frame to every tracker in turn (lockstep: the
backend and its baseline see the same frames under the same load, so their speeds compare fairly), saving
each tracker's raw output under ``OUT/<backend>/<parameter set>/<sequence>/`` (see ``predictions``).
``score`` reads those predictions back and scores them with each sequence's protocol, so a saved run can be
re-scored (``segtrack score OUT``) without tracking again; ``evaluate`` is the two in a row. One evaluation
may mix layouts; means are taken per protocol.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Union

from ..config import to_dict
from ..io import DataError, FrameSource
from ..parameter_sets import DEFAULT_SET, find_parameter_set, search_path
from ..trackers.base import Tracker
from .datasets import AnnotatedSequence, discover_sequences
from .predictions import SequenceWriter, read_manifest, read_sequence, write_manifest
from .protocols import Protocol, get_protocol, protocol_for
from .report import BackendResults, EvaluationReport, FrameRecord, SequenceResult

log = logging.getLogger(__name__)


@dataclass
class TrackerRun:
    """One tracker of an evaluation, named by backend and parameter set (its results folder)."""

    backend: str
    tracker: Tracker
    parameter_set: str = "default"

    @property
    def path(self) -> str:
        return f"{self.backend}/{self.parameter_set}"


Trackers = Union[Sequence[TrackerRun], Mapping[str, Tracker]]


def parameter_set_name(backend: str, config: object) -> str:
    """Results folder name for a tracker built from ``config`` (as make_tracker takes it): "default" for the
    backend's defaults, the set's name for one of its parameter sets, "custom" for anything else."""
    if config is None:
        return DEFAULT_SET
    if isinstance(config, (str, os.PathLike)):
        path = find_parameter_set(backend, config)
        if path is None:
            return DEFAULT_SET
        path = path.resolve()
        if path.parent.name == backend and path.parent.parent in {p.resolve() for p in search_path()}:
            return path.stem
    return "custom"


def run(sequences: Sequence[AnnotatedSequence], trackers: Trackers, out_dir: Union[str, Path], init: str = "box",
        root: Union[str, Path] = "", on_frame: Optional[Callable[[], None]] = None) -> Path:
    """Track every sequence with every tracker in lockstep and save the predictions under ``out_dir``;
    returns ``out_dir``. ``root``: the data folder the sequence names are relative to (for re-scoring)."""
    Protocol.check_init(init)
    runs = _as_runs(trackers)
    if len({r.path for r in runs}) != len(runs):
        raise ValueError(f"two trackers share a results folder: {[r.path for r in runs]}")
    for sequence in sequences:
        protocol_for(sequence)  # an unknown protocol fails before any tracking
    out = Path(out_dir)
    write_manifest(out, {
        "init": init, "root": str(root), "root_path": str(Path(root).resolve()) if str(root) else "",
        "sequences": [{"name": s.name, "layout": s.layout, "protocol": s.protocol} for s in sequences],
        "runs": [{"backend": r.backend, "parameter_set": r.parameter_set, "path": r.path,
                  "config": to_dict(r.tracker.config), "device": r.tracker.device} for r in runs],
    })
    for sequence in sequences:
        log.info("evaluating %s", sequence.name)
        run_sequence(sequence, runs, out, init, on_frame)
    return out


def run_sequence(sequence: AnnotatedSequence, runs: Sequence[TrackerRun], out_dir: Path, init: str = "box",
                 on_frame: Optional[Callable[[], None]] = None) -> None:
    """Initialise every tracker on frame 0 from the protocol's target, then give each later frame to each
    tracker in turn, timing track() alone; predictions go to ``out_dir/<run.path>/<sequence.name>/``."""
    protocol = protocol_for(sequence)
    source = FrameSource(sequence.frame_paths)
    frames = iter(source)
    first = next(frames, None)
    if first is None or first[0] != 0:
        raise DataError(f"{sequence.name}: first frame {sequence.frame_paths[0]} cannot be read")
    frame0 = first[1]
    shape = frame0.shape[:2]
    target = protocol.init_target(sequence, shape, init)
    writers = [SequenceWriter(Path(out_dir) / r.path / sequence.name, sequence.name, protocol.name) for r in runs]
    try:
        for r, writer in zip(runs, writers):
            r.tracker.reset()
            start = time.perf_counter()
            r.tracker.initialize(frame0, target)
            writer.init_time = time.perf_counter() - start
        for index, frame in frames:
            for r, writer in zip(runs, writers):
                start = time.perf_counter()
                result = r.tracker.track(frame)
                elapsed = time.perf_counter() - start
                writer.write(index, result, elapsed)
            if on_frame is not None:
                on_frame()
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    for writer in writers:
        writer.close((shape[1], shape[0]), [s.index for s in source.skipped])


def score(out_dir: Union[str, Path], root: Union[str, Path, None] = None,
          sequences: Optional[Sequence[AnnotatedSequence]] = None) -> EvaluationReport:
    """Score the predictions saved under ``out_dir``; no tracker runs. The ground truth comes from
    ``sequences`` when given (those of the run), else from the data folder ``root`` (default: the one
    the run used)."""
    out = Path(out_dir)
    manifest = read_manifest(out)
    names = [s["name"] for s in manifest["sequences"]]
    if sequences is None:
        data_root = Path(root) if root is not None else Path(manifest["root_path"] or manifest["root"])
        sequences = discover_sequences(data_root, names) if names else []
    by_name = {s.name: s for s in sequences}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise DataError(f"no ground truth for {', '.join(missing)}")
    results = []
    for run_info in manifest["runs"]:
        backend = BackendResults(run_info["backend"], run_info["config"])
        for name in names:
            backend.sequences.append(score_sequence(by_name[name], out / run_info["path"] / name))
        results.append(backend)
    return EvaluationReport(manifest["init"], str(root) if root is not None else manifest["root"], results)


def score_sequence(sequence: AnnotatedSequence, folder: Path) -> SequenceResult:
    """One tracker's saved predictions for ``sequence`` (in ``folder``), scored by its protocol."""
    saved = read_sequence(folder)
    protocol: Protocol = get_protocol(saved.protocol)
    if protocol.name != sequence.protocol:
        raise DataError(f"{sequence.name}: predictions were scored by {protocol.name}, the data now by "
                        f"{sequence.protocol}")
    if saved.predictions and saved.predictions[-1].frame >= len(sequence):
        raise DataError(f"{sequence.name}: predictions up to frame {saved.predictions[-1].frame}, "
                        f"ground truth for {len(sequence)} frames")
    frames = [FrameRecord(p.frame, p.score, p.state, p.time, protocol.score_frame(sequence, p, saved.shape))
              for p in saved.predictions]
    return SequenceResult(sequence.name, protocol.name, frames, saved.init_time, saved.skipped_frames)


def evaluate(sequences: Sequence[AnnotatedSequence], trackers: Trackers, init: str = "box",
             out_dir: Union[str, Path, None] = None, root: Union[str, Path] = "",
             on_frame: Optional[Callable[[], None]] = None) -> EvaluationReport:
    """``run`` then ``score``; predictions are kept in ``out_dir``, or in a temporary folder when None.
    The report lists the trackers in the order given."""
    if out_dir is not None:
        run(sequences, trackers, out_dir, init, root, on_frame)
        return score(out_dir, sequences=sequences)
    with tempfile.TemporaryDirectory(prefix="segtrack-eval-") as tmp:
        run(sequences, trackers, tmp, init, root, on_frame)
        return score(tmp, sequences=sequences)


def evaluate_sequence(sequence: AnnotatedSequence, trackers: Trackers, init: str = "box",
                      out_dir: Union[str, Path, None] = None) -> Dict[str, SequenceResult]:
    """Evaluate one sequence; returns backend name -> SequenceResult."""
    report = evaluate([sequence], trackers, init, out_dir)
    return {r.backend: r.sequences[0] for r in report.results}


def _as_runs(trackers: Trackers) -> List[TrackerRun]:
    if isinstance(trackers, Mapping):
        return [TrackerRun(name, tracker) for name, tracker in trackers.items()]
    return list(trackers)
