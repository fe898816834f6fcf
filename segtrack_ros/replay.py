"""Play a bag's image topic into ROS, at the recorded speed or a given one, to reproduce a field run.

python -m segtrack_ros.replay BAG [--topic T] [--to TOPIC] [--speed 1.0 | --rate HZ] [--restamp]
                              [--start N] [--count N] [--wait 10]

Publishes each recorded message's bytes unchanged (sensor_msgs/Image or CompressedImage, as recorded) on
the recorded topic name (or --to) with SensorDataQoS, the camera QoS the node subscribes with. Header
stamps are kept unless --restamp, which stamps each message with the time it is published (like a live
camera). Bad bags and topics print one error line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

from segtrack_core.bag import Bag, BagTopic
from segtrack_core.errors import SegtrackError

EXIT_USAGE = 2


@dataclass
class PlayResult:
    published: int
    seconds: float
    max_lag_ms: float  # how late the most delayed message went out against its schedule
    stamps: List[int]  # header stamps as published (ns)


def play(bag: Bag, topic: BagTopic, publish: Callable[[bytes], None], speed: float = 1.0,
         rate: Optional[float] = None, restamp: bool = False, start: int = 0,
         count: Optional[int] = None, now: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> PlayResult:
    """Publish ``count`` messages (default: all) of ``topic`` from message ``start`` on: at ``rate``
    messages per second when given, else at the recorded times divided by ``speed``. ``publish`` gets
    the serialized message. ``now`` and ``sleep`` pace the schedule (seconds; a test passes a fake
    clock); restamped header stamps stay wall-clock time."""
    first_log: Optional[int] = None
    begin = now()  # restarted at the first played message (skipping to ``start`` takes time)
    max_lag = 0.0
    stamps: List[int] = []
    published = 0
    for message in bag.messages(topic):
        if message.index < start:
            continue
        if count is not None and published >= count:
            break
        if first_log is None:
            first_log, begin = message.log_time_ns, now()
        offset = published / rate if rate else (message.log_time_ns - first_log) * 1e-9 / speed
        data = message.data
        wait = begin + offset - now()
        if wait > 0:
            sleep(wait)
        if restamp:
            stamp = time.time_ns()
            data = bag.restamped(topic, message, stamp)
        else:
            stamp = bag.header_stamp(topic, message)
        publish(data)
        max_lag = max(max_lag, now() - begin - offset)
        stamps.append(stamp)
        published += 1
    return PlayResult(published, now() - begin, max_lag * 1000, stamps)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segtrack_ros.replay", description=__doc__.splitlines()[0])
    parser.add_argument("bag", help="rosbag2 bag: a folder with metadata.yaml, or a .db3 / .mcap file")
    parser.add_argument("--topic", help="image topic to play (needed when the bag has more than one)")
    parser.add_argument("--to", help="topic to publish on (default: the recorded name)")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=1.0, help="multiple of the recorded speed (default: 1)")
    pace.add_argument("--rate", type=float, help="fixed rate in messages per second instead")
    parser.add_argument("--restamp", action="store_true", help="stamp each message with its publish time")
    parser.add_argument("--start", type=int, default=0, help="first message to play (0-based, default: 0)")
    parser.add_argument("--count", type=int, help="number of messages to play (default: to the end)")
    parser.add_argument("--wait", type=float, default=10.0,
                        help="seconds to wait for a subscriber before playing (default: 10; 0: do not wait)")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if not args.speed > 0 or (args.rate is not None and not args.rate > 0):
            raise SegtrackError(f"--speed and --rate must be > 0, got {args.speed} and {args.rate}")
        if args.start < 0 or (args.count is not None and args.count < 1):
            raise SegtrackError(f"--start must be >= 0 and --count >= 1, got {args.start} and {args.count}")
        with Bag(Path(args.bag)) as bag:
            topic = bag.topic(args.topic)
            return _replay(args, bag, topic)
    except SegtrackError as exc:
        print(f"segtrack replay: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("segtrack replay: interrupted", file=sys.stderr)
        return 130


def _replay(args: argparse.Namespace, bag: Bag, topic: BagTopic) -> int:
    import rclpy
    from rclpy.exceptions import InvalidTopicNameException
    from rclpy.qos import qos_profile_sensor_data
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import CompressedImage, Image

    name = args.to or topic.name
    # Ctrl-C raises KeyboardInterrupt here rather than shutting the context down under the publisher.
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = rclpy.create_node("segtrack_replay")
        try:
            publisher = node.create_publisher(CompressedImage if topic.compressed else Image, name,
                                              qos_profile_sensor_data)
        except InvalidTopicNameException as exc:
            reason = str(exc).splitlines()[0]
            raise SegtrackError(f"--to {name!r} is not a valid topic name: {reason}") from None
        deadline = time.monotonic() + args.wait
        while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        if publisher.get_subscription_count():
            time.sleep(0.5)  # the subscriber's side of discovery may finish a little after ours
        else:
            print(f"no subscriber on {publisher.topic_name} after {args.wait:g} s; playing anyway")
        pace = f"at {args.rate:g} messages/s" if args.rate else f"at {args.speed:g}x the recorded speed"
        print(f"playing {topic.name} ({topic.msgtype}, {topic.count} messages) from message {args.start} on "
              f"{publisher.topic_name} {pace}, {'restamped' if args.restamp else 'recorded stamps'}", flush=True)
        result = play(bag, topic, publisher.publish, args.speed, args.rate, args.restamp, args.start, args.count)
        print(f"published {result.published} messages in {result.seconds:.2f} s, "
              f"at most {result.max_lag_ms:.1f} ms behind schedule")
        node.destroy_node()
        return 0
    finally:
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
