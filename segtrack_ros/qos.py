"""The node's QoS profiles, built from parameter values that segtrack_ros.parameters already checked."""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

_RELIABILITY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}


def image_qos(reliability: str, depth: int) -> QoSProfile:
    """The image subscription's QoS (SensorDataQoS, best effort, unless the user overrides it)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=_RELIABILITY[reliability],
                      durability=DurabilityPolicy.VOLATILE)


def reliable_qos(depth: int) -> QoSProfile:
    """The outputs' and the services' QoS: reliable, volatile, the last ``depth`` kept (for services the
    request queue: rclpy's default of 10 drops the 11th concurrent call)."""
    return image_qos("reliable", depth)
