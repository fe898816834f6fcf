"""The node's QoS profiles, built from parameter values that segtrack_ros.parameters already checked."""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

_RELIABILITY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}


def image_qos(reliability: str, depth: int) -> QoSProfile:
    """The image subscription's QoS (SensorDataQoS, best effort, unless the user overrides it)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=_RELIABILITY[reliability],
                      durability=DurabilityPolicy.VOLATILE)


def output_qos(depth: int) -> QoSProfile:
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE)


def service_qos(depth: int) -> QoSProfile:
    """The services' default QoS with a request queue of ``depth`` (rclpy's default of 10 drops the 11th
    concurrent call)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)
