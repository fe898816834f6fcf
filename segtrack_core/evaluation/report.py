"""Scored results: per-frame records, per-sequence and per-protocol summaries, the files an evaluation
writes (results.json, sequences.csv, frames.csv) and the text table ``segtrack eval`` prints."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Union

from .protocols import FRAME_KEYS, PROTOCOLS, Measures, get_protocol, mean_present

FRAME_COLUMNS = ("frame", "score", "state", "time", *FRAME_KEYS)


@dataclass
class FrameRecord:
    frame: int
    score: float
    state: str
    time: float  # seconds in track()
    measures: Measures = field(default_factory=dict)  # the protocol's frame_keys (e.g. j, f; iou, poly_iou)

    def to_dict(self) -> dict:
        """Every protocol's measure as a key (None where not scored): one shape for every frame."""
        return {"frame": self.frame, "score": self.score, "state": self.state, "time": self.time,
                **{k: self.measures.get(k) for k in FRAME_KEYS}}


@dataclass
class SequenceResult:
    sequence: str
    protocol: str
    frames: List[FrameRecord] = field(default_factory=list)
    init_time: float = 0.0
    skipped_frames: List[int] = field(default_factory=list)

    def summary(self) -> Dict[str, float]:
        total_time = sum(r.time for r in self.frames)
        out: Dict[str, float] = {"frames": len(self.frames),
                                 "fps": len(self.frames) / total_time if total_time > 0 else 0.0}
        out.update(get_protocol(self.protocol).summarize([r.measures for r in self.frames]))
        out["mean_score"] = mean_present([r.score for r in self.frames])
        return out


@dataclass
class BackendResults:
    backend: str
    config: dict
    sequences: List[SequenceResult] = field(default_factory=list)

    def summary(self) -> Dict[str, Dict[str, float]]:
        """Per protocol: means over sequences of the per-sequence means (DAVIS/VOT convention); frames and
        the protocol's summed keys (failures) summed; fps = all frames / all tracking time."""
        out: Dict[str, Dict[str, float]] = {}
        for name, protocol in PROTOCOLS.items():
            sequences = [s for s in self.sequences if s.protocol == name]
            if not sequences:
                continue
            per_seq = [s.summary() for s in sequences]
            merged: Dict[str, float] = {}
            for key in per_seq[0]:
                values = [p[key] for p in per_seq]
                summed = key == "frames" or key in protocol.summed_keys
                merged[key] = float(sum(values)) if summed else mean_present(values)
            total_time = sum(r.time for s in sequences for r in s.frames)
            merged["fps"] = merged["frames"] / total_time if total_time > 0 else 0.0
            out[name] = merged
        return out


def summary_keys(protocol: str) -> List[str]:
    """A protocol's columns in sequences.csv and results.json summaries, in order."""
    return [*get_protocol(protocol).metric_keys, "mean_score", "fps", "frames"]


@dataclass
class EvaluationReport:
    init: str
    root: str
    results: List[BackendResults]

    @property
    def protocols(self) -> List[str]:
        present = {s.protocol for r in self.results for s in r.sequences}
        return [p for p in PROTOCOLS if p in present]

    def to_dict(self) -> dict:
        return {
            "init": self.init,
            "root": self.root,
            "backends": [
                {
                    "backend": r.backend,
                    "config": r.config,
                    "summary": r.summary(),
                    "sequences": [
                        {"sequence": s.sequence, "summary": s.summary(), "init_time": s.init_time,
                         "skipped_frames": s.skipped_frames, "frames": [f.to_dict() for f in s.frames]}
                        for s in r.sequences
                    ],
                }
                for r in self.results
            ],
        }

    def save(self, out_dir: Union[str, Path]) -> List[Path]:
        """Write results.json, sequences.csv (per sequence and mean) and frames.csv; returns the paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        json_path = out / "results.json"
        json_path.write_text(json.dumps(_nan_to_none(self.to_dict()), indent=2, allow_nan=False))
        keys = [k for protocol in self.protocols for k in summary_keys(protocol) if k not in ("fps", "frames")]
        keys = list(dict.fromkeys(keys)) + ["fps", "frames"]
        seq_path = out / "sequences.csv"
        with seq_path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["backend", "protocol", "sequence", *keys])
            for r in self.results:
                for s in r.sequences:
                    summary = s.summary()
                    writer.writerow([r.backend, s.protocol, s.sequence, *(_fmt(summary.get(k, "")) for k in keys)])
                for protocol, summary in r.summary().items():
                    writer.writerow([r.backend, protocol, "mean", *(_fmt(summary.get(k, "")) for k in keys)])
        frames_path = out / "frames.csv"
        with frames_path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["backend", "sequence", *FRAME_COLUMNS])
            for r in self.results:
                for s in r.sequences:
                    for rec in s.frames:
                        row = rec.to_dict()
                        writer.writerow([r.backend, s.sequence, *(_fmt(row[c]) for c in FRAME_COLUMNS)])
        return [json_path, seq_path, frames_path]


def format_report(report: EvaluationReport) -> str:
    """One table: a row per sequence and a mean per protocol, a column group per backend, and the
    difference of the headline measure (first backend minus second) when there are two."""
    names = [r.backend for r in report.results]
    compare = len(names) == 2
    header = f"{'sequence':<24}{'metric':>7}" + "".join(f"{n[:9]:>10}" for n in names)
    header += f"{'diff':>8}" if compare else ""
    header += f"{'2nd':>5}" + "".join(f"{n[:9]:>10}" for n in names)
    header += "".join(f"{'off% ' + n[:4]:>10}" for n in names) + "".join(f"{'fps ' + n[:5]:>10}" for n in names)
    lines = [f"init {report.init}; off% = frames with box IoU < 0.1; diff = {names[0]} - {names[1]}"
             if compare else f"init {report.init}; off% = frames with box IoU < 0.1", header]

    def row(label: str, protocol: str, summaries: List[dict]) -> str:
        main, second = get_protocol(protocol).table_columns
        has_off = get_protocol(protocol).shows_off_target
        text = f"{label[:24]:<24}{main:>7}" + "".join(f"{s[main]:>10.3f}" for s in summaries)
        text += f"{summaries[0][main] - summaries[1][main]:>+8.3f}" if compare else ""
        text += f"{second:>5}" + "".join(f"{s[second]:>10.3f}" for s in summaries)
        text += "".join(f"{100 * s['off_target']:>10.1f}" if has_off else f"{'-':>10}" for s in summaries)
        return text + "".join(f"{s['fps']:>10.1f}" for s in summaries)

    for protocol in report.protocols:
        per_backend = [[s for s in r.sequences if s.protocol == protocol] for r in report.results]
        for index, sequence in enumerate(per_backend[0]):
            lines.append(row(sequence.sequence, protocol, [seqs[index].summary() for seqs in per_backend]))
        count = len(per_backend[0])
        lines.append(row(f"mean ({count} {protocol})", protocol, [r.summary()[protocol] for r in report.results]))
    return "\n".join(lines)


def _nan_to_none(value: object) -> object:
    # NaN (a mean over no frames) is not valid JSON.
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


def _fmt(value: object) -> object:
    return f"{value:.6g}" if isinstance(value, float) else value

