"""How long ~/set_target takes while the node tracks, and whether tracking goes on meanwhile.

PYTHONPATH=scripts python -m ros_harness.retarget [--sequence boxes/boat1] [--fps 10] [--calls 9] [--every 12]

A camera thread plays a sequence (default UAV123 boat1, 1280x720) at its rate into one node (d3s2 on CPU);
after the first target, every ``--every`` frames the main thread sets a new target (the ground-truth box of
the newest frame, on that frame's stamp). Per call: the time to the answer, and how many frames the node
published while it waited (tracking the current target). Prints the median answer time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from pathlib import Path

import cv2

from segtrack_core.evaluation.datasets import VotSequence, default_data_root
from segtrack_core.types import Box

from . import save_figures
from .demo import polygon_box

DEFAULT_SEQUENCE = default_data_root() / "boxes" / "boat1"


def run(args: argparse.Namespace) -> dict:
    from .client import NodeProcess, TrackerClient, configure_this_process

    sequence = VotSequence.load(Path(args.sequence))
    count = min(len(sequence), args.every * (args.calls + 1) + 1)
    frames = [cv2.imread(str(path)) for path in sequence.frame_paths[:count]]
    boxes = [polygon_box(polygon) for polygon in sequence.polygons[:count]]
    domain_id = 1 + os.getpid() % 100
    configure_this_process(domain_id)
    calls = []
    with NodeProcess(domain_id, {"tracker.runtime.device": "cpu", "publish_debug_image": False}) as node, \
            TrackerClient(domain_id, keep_masks=False) as client:
        if not client.wait_for_services(90) or not client.wait_for_subscriber(10):
            raise SystemExit(f"the node did not come up; its log:\n{node.log()}")
        if not client.start_tracking(frames[0], boxes[0], timeout=60).success:
            raise SystemExit("the first set_target failed")
        published: dict[int, int] = {}  # frame index -> stamp
        lock = threading.Lock()

        def camera() -> None:
            start = time.monotonic()
            for index in range(1, count):
                time.sleep(max(0.0, start + index / args.fps - time.monotonic()))
                stamp = client.publish_frame(frames[index])
                with lock:
                    published[index] = stamp

        player = threading.Thread(target=camera, daemon=True)
        player.start()
        for call in range(1, args.calls + 1):
            index = call * args.every
            while True:
                with lock:
                    stamp = published.get(index)
                if stamp is not None:
                    break
                time.sleep(0.01)
            outputs_before = len(client.received.targets)
            started = time.perf_counter()
            response = client.set_target(Box(*boxes[index]), stamp=stamp)
            seconds = time.perf_counter() - started
            tracked = len(client.received.targets) - outputs_before
            calls.append({"frame": index, "seconds": seconds, "success": bool(response.success),
                          "outputs_while_waiting": tracked})
            print(f"frame {index}: answered in {seconds * 1000:.0f} ms ({'ok' if response.success else response.message}); "
                  f"{tracked} results published meanwhile", flush=True)
        player.join()
    median = statistics.median(c["seconds"] for c in calls)
    print(f"set_target median {median * 1000:.0f} ms over {len(calls)} calls at "
          f"{frames[0].shape[1]}x{frames[0].shape[0]}, camera at {args.fps:g} fps")
    return {"sequence": str(args.sequence), "fps": args.fps, "median_s": median, "calls": calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequence", default=str(DEFAULT_SEQUENCE), help="a VOT-layout sequence folder")
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--calls", type=int, default=9)
    parser.add_argument("--every", type=int, default=12, help="frames between calls")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    save_figures(args.out, run(args))


if __name__ == "__main__":
    main()
