"""The segtrack node's resident memory over a stream of changing resolutions: where it levels off.

PYTHONPATH=scripts python -m ros_harness.memory [--rounds 2] [--sizes 640x480,1280x720,1920x1080] [--backend d3s2]

One node process (debug image off) gets, per round and size, a new target on car-shadow scaled to that
size and 78 frames at about 12 fps; after each segment the RSS from /diagnostics is printed. A plateau that
repeats from one round to the next means no leak; its height is the node's memory budget.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from . import save_figures
from .bench import DEFAULT_SEQUENCE, scaled_sequence


def newest_rss_mb(client, diagnostic_value) -> float:
    """RSS of a diagnostics message sent after this call."""
    seen = len(client.received.diagnostics)
    if not client.wait_for(lambda r: len(r.diagnostics) > seen, 5):
        raise SystemExit("no diagnostics from the node")
    return float(diagnostic_value(client.received.diagnostics[-1][1], "memory_rss_mb"))


def run(args: argparse.Namespace) -> dict:
    from .client import NodeProcess, TrackerClient, configure_this_process, diagnostic_value

    domain_id = 1 + os.getpid() % 100
    configure_this_process(domain_id)
    sizes = [tuple(int(v) for v in text.split("x")) for text in args.sizes.split(",")]
    parameters = {"backend": args.backend, "tracker.runtime.device": "cpu", "publish_debug_image": False}
    rows = []
    with NodeProcess(domain_id, parameters) as node, TrackerClient(domain_id, keep_masks=False) as client:
        if not client.wait_for_services(90) or not client.wait_for_subscriber(10):
            raise SystemExit(f"the node did not come up; its log:\n{node.log()}")
        rows.append({"round": 0, "size": "start", "rss_mb": newest_rss_mb(client, diagnostic_value)})
        print(f"start: {rows[-1]['rss_mb']:.0f} MB", flush=True)
        for round_index in range(1, args.rounds + 1):
            for size in sizes:
                frames, box = scaled_sequence(Path(args.sequence), size, 78)
                response = client.start_tracking(frames[0], box, timeout=60)
                if not response.success:
                    raise SystemExit(f"set_target failed: {response.message}")
                for frame in frames[1:]:
                    client.publish_frame(frame)
                    time.sleep(0.08)
                client.clear()
                rss = newest_rss_mb(client, diagnostic_value)
                rows.append({"round": round_index, "size": f"{size[0]}x{size[1]}", "rss_mb": rss})
                print(f"round {round_index} {size[0]}x{size[1]}: {rss:.0f} MB", flush=True)
        if not node.alive():
            raise SystemExit(f"the node died; its log:\n{node.log()}")
    return {"backend": args.backend, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequence", default=str(DEFAULT_SEQUENCE))
    parser.add_argument("--sizes", default="640x480,1280x720,1920x1080")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backend", default="d3s2")
    parser.add_argument("--out", help="write the figures as JSON here")
    args = parser.parse_args()
    save_figures(args.out, run(args))


if __name__ == "__main__":
    main()
