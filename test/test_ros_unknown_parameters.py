"""A params file naming no parameter of the node (a launch argument's name, a typo) is reported, not
silently ignored, and the node still starts with the parameters it does know."""

from __future__ import annotations

import os
import time

import yaml

from prerequisites import needs_ros

pytestmark = needs_ros("the node's warnings about unknown parameters")

DOMAIN_ID = 1 + (os.getpid() + 83) % 100


def test_unknown_keys_in_the_params_file_are_named_with_the_closest_parameter(tmp_path):
    from ros_harness.client import NodeProcess

    params_file = tmp_path / "tracker.yaml"
    params_file.write_text(yaml.safe_dump({"/**/segtrack": {"ros__parameters": {
        "backend": "d3s2", "tracker.runtime.device": "cpu",
        "device": "cpu", "tracker.tracking_treshold": 0.9}}}))
    with NodeProcess(DOMAIN_ID, params_file=params_file) as node:
        deadline = time.monotonic() + 60
        while "configured: backend" not in node.log() and time.monotonic() < deadline and node.alive():
            time.sleep(0.1)
        log = node.log()
        assert "configured: backend d3s2 on cpu" in log, log
        assert node.alive(), log
    device = ("unknown parameter device is ignored; did you mean tracker.runtime.device? "
              "(the launch argument device sets it)")
    typo = "unknown parameter tracker.tracking_treshold is ignored; did you mean tracker.tracking_threshold?"
    assert log.count(device) == 1 and log.count(typo) == 1, log
    assert log.count("unknown parameter") == 2, log  # the known keys are not reported


def test_an_integer_for_a_float_parameter_is_taken_and_a_wrong_type_is_refused_without_a_crash(tmp_path):
    from ros_harness.client import NodeProcess

    params_file = tmp_path / "tracker.yaml"
    params_file.write_text(yaml.safe_dump({"/**/segtrack": {"ros__parameters": {
        "backend": "d3s2", "tracker.runtime.device": "cpu", "tracker.lost_threshold": 0,
        "tracker.tracking_threshold": "high"}}}))
    with NodeProcess(DOMAIN_ID + 100, params_file=params_file) as node:
        deadline = time.monotonic() + 60
        while "configure failed" not in node.log() and time.monotonic() < deadline and node.alive():
            time.sleep(0.1)
        log = node.log()
        assert node.alive(), log  # used to die with InvalidParameterTypeException
    refusal = "parameter tracker.tracking_threshold must be a float, got 'high'"
    assert refusal in log and "configure failed: " + refusal in log, log
    assert "lost_threshold" not in log, log  # the integer 0 was taken as 0.0
