"""Overhead of the segtrack node itself: latency minus the time spent inside the tracker.

PYTHONPATH=scripts python -m ros_harness.bench [--resolutions 640x480,1920x1080] [--frames 150] [--backend csrt]

For each resolution a node process (shipped DDS profile, SHM transport) is fed real DAVIS frames scaled to
that size, one at a time (the next frame goes out once the previous result arrived, so no frame waits in
the mailbox). Per frame:
- node overhead   = TrackedTarget.latency_ms - tracker_ms: image transport into the node, conversion,
                    hand-off to the worker, building the outputs, up to the publish call;
- end-to-end overhead = (receipt of TrackedTarget - image stamp) - tracker_ms: the same plus delivering
                    the result back to a subscriber.
Prints median and p90 of both per resolution, and the node's own breakdown from /diagnostics: image
transport (stamp -> subscription callback, i.e. DDS + rclpy, the same for any Python subscriber), mailbox
hand-off to the worker, and the worker's time outside the tracker (conversion, messages, publishing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from segtrack_core.geometry import mask_to_box
from segtrack_core.evaluation.datasets import default_data_root


DEFAULT_SEQUENCE = default_data_root() / "davis2016" / "car-shadow"


def scaled_sequence(sequence: Path, size: tuple[int, int], count: int) -> tuple[list[np.ndarray], tuple]:
    paths = sorted((sequence / "frames").glob("*.jpg"))
    if not paths:
        raise SystemExit(f"no frames in {sequence / 'frames'}")
    frames = [cv2.resize(cv2.imread(str(p)), size, interpolation=cv2.INTER_LINEAR) for p in paths]
    mask = cv2.imread(str(sequence / "masks" / "00000.png"), cv2.IMREAD_GRAYSCALE)
    mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST) > 0
    # Play the clip forwards and backwards so the target never jumps.
    loop = frames + frames[-2:0:-1]
    return [loop[i % len(loop)] for i in range(count + 1)], mask_to_box(mask).as_tuple()


def measure(size: tuple[int, int], args: argparse.Namespace, domain_id: int) -> dict:
    from segtrack_ros.conversions import stamp_to_ns

    from .client import NodeProcess, TrackerClient, diagnostic_value

    frames, box = scaled_sequence(Path(args.sequence), size, args.frames + args.warmup)
    parameters = {"backend": args.backend, "tracker.runtime.device": args.device, "publish_debug_image": False}
    with NodeProcess(domain_id, parameters) as node, TrackerClient(domain_id, keep_masks=False) as client:
        if not client.wait_for_services(90) or not client.wait_for_subscriber(10):
            raise SystemExit(f"the node did not come up; its log:\n{node.log()}")
        response = client.start_tracking(frames[0], box, timeout=60)
        if not response.success:
            raise SystemExit(f"set_target failed: {response.message}")
        # Pre-built messages: the camera side's own conversion is not the node's overhead.
        messages = [client.image_message(f) for f in frames[1:]]
        node_overhead, end_to_end, tracker = [], [], []
        for i, msg in enumerate(messages):
            msg.header.stamp.sec, msg.header.stamp.nanosec = 0, 0
            stamp = client.publish(msg)
            if not client.wait_for(lambda r: r.targets and stamp_to_ns(r.targets[-1][1].header.stamp) == stamp, 10):
                continue  # lost in transport: not a node measurement
            received_ns, target = client.received.targets[-1]
            if i < args.warmup:
                continue
            node_overhead.append(target.latency_ms - target.tracker_ms)
            end_to_end.append((received_ns - stamp) * 1e-6 - target.tracker_ms)
            tracker.append(target.tracker_ms)
            if args.period > 0:
                time.sleep(args.period)
        missing = len(messages) - args.warmup - len(tracker)
        # The node's own breakdown (medians over its last 256 frames) from its next diagnostics message.
        seen = len(client.received.diagnostics)
        client.wait_for(lambda r: len(r.diagnostics) > seen, 3)
        diagnostics = client.received.diagnostics[-1][1] if client.received.diagnostics else None
    breakdown = {}
    for key in ("transport", "wait", "processing"):
        value = diagnostic_value(diagnostics, f"{key}_ms_median")
        breakdown[key] = float(value) if value else None
    return {
        "resolution": f"{size[0]}x{size[1]}",
        "frames": len(tracker),
        "missing": missing,
        "node_overhead_ms": summary(node_overhead),
        "end_to_end_overhead_ms": summary(end_to_end),
        "tracker_ms": summary(tracker),
        "node_breakdown_ms_median": breakdown,
    }


def summary(values: list[float]) -> dict:
    if not values:
        return {"median": None, "p90": None}
    return {"median": float(np.median(values)), "p90": float(np.percentile(values, 90))}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", default="640x480,1920x1080")
    parser.add_argument("--frames", type=int, default=150, help="measured frames per resolution (+ warm-up)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--period", type=float, default=0.0, help="pause between frames, s")
    parser.add_argument("--backend", default="csrt", help="any backend: its own time is subtracted")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--sequence", default=str(DEFAULT_SEQUENCE), help="DAVIS-layout sequence folder")
    parser.add_argument("--out", default="out/ros_bench.json")
    args = parser.parse_args(argv)
    sizes = [tuple(int(v) for v in r.lower().split("x")) for r in args.resolutions.split(",")]
    from .client import configure_this_process

    domain_id = 1 + os.getpid() % 100
    configure_this_process(domain_id)
    results = []
    for size in sizes:
        result = measure(size, args, domain_id)
        results.append(result)
        node, e2e, trk = result["node_overhead_ms"], result["end_to_end_overhead_ms"], result["tracker_ms"]
        if node["median"] is None:
            print(f"{result['resolution']:>10}: no frames measured")
            continue
        print(f"{result['resolution']:>10}: node overhead median {node['median']:.2f} ms, p90 {node['p90']:.2f} ms | "
              f"end-to-end overhead median {e2e['median']:.2f} ms, p90 {e2e['p90']:.2f} ms | "
              f"tracker median {trk['median']:.1f} ms | {result['frames']} frames"
              + (f", {result['missing']} without result" if result["missing"] else ""))
        parts = result["node_breakdown_ms_median"]
        if None not in parts.values():
            print(f"{'':>10}  of which: image transport into the node {parts['transport']:.2f} ms, "
                  f"mailbox hand-off {parts['wait']:.2f} ms, node processing incl. publishing "
                  f"{parts['processing']:.2f} ms (medians)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"backend": args.backend, "results": results}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
