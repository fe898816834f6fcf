"""The node's parameters: its own, and tracker.* generated from the backend's config (pure: no ROS)."""

from __future__ import annotations

import pytest

from segtrack_core import create_tracker
from segtrack_core.config import describe
from segtrack_core.errors import ConfigError
from segtrack_core.registry import BACKENDS
from segtrack_ros.parameters import (LIVE_PARAMETERS, NODE_PARAMETERS, STARTUP_PARAMETERS, parameter_error,
                                     tracker_config, tracker_parameters, unknown_parameter_warnings,
                                     with_tracker_values)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_every_setting_of_the_backend_is_a_described_parameter(backend):
    settings = {info.name: info for info in tracker_parameters(backend, "default")}
    fields = {"tracker." + info.name for info in describe(BACKENDS[backend].config_cls)}
    assert set(settings) == fields and fields
    for info in settings.values():
        assert info.help and info.type in (bool, int, float, str), info
        assert type(info.value) is info.type, info  # ROS types the parameter by its default


def test_the_parameter_set_gives_the_defaults():
    defaults = {i.name: i.value for i in tracker_parameters("d3s2", "default")}
    fp16 = {i.name: i.value for i in tracker_parameters("d3s2", "cuda_fp16")}
    assert defaults["tracker.runtime.device"] == "auto" and fp16["tracker.runtime.device"] == "cuda"
    assert fp16["tracker.runtime.half"] and {k for k in fp16 if fp16[k] != defaults[k]} == {
        "tracker.runtime.device", "tracker.runtime.half"}


def test_tracker_parameters_build_the_config_and_are_checked_by_it():
    config = tracker_config("d3s2", "cuda_fp16", {"tracker.runtime.device": "cpu", "tracker.runtime.half": False,
                                                  "tracker.gem.memory": 20, "tracker.tracking_threshold": 0.55})
    tracker = create_tracker("d3s2", config)
    assert tracker.device == "cpu" and tracker.config.gem.memory == 20 and tracker.config.tracking_threshold == 0.55
    assert with_tracker_values(config, {"tracker.lost_threshold": 0.2}).lost_threshold == 0.2
    with pytest.raises(ConfigError, match="lost_threshold <= tracking_threshold"):
        with_tracker_values(config, {"tracker.lost_threshold": 0.9})
    with pytest.raises(ConfigError, match="device"):
        tracker_config("d3s2", "default", {"tracker.runtime.device": "gpu"})


def test_node_parameter_values_are_checked():
    assert all(parameter_error(name, default) is None for name, (default, _) in NODE_PARAMETERS.items())
    assert "not registered" in parameter_error("backend", "nope")
    for name in ("frame_buffer_size", "qos.depth", "qos.output_depth", "service_queue_depth"):
        assert "at least 1" in parameter_error(name, 0)
    assert "best_effort or reliable" in parameter_error("qos.reliability", "sometimes")
    assert set(STARTUP_PARAMETERS) <= set(NODE_PARAMETERS)
    tracker_live = {name for name in LIVE_PARAMETERS if name.startswith("tracker.")}
    assert tracker_live <= {i.name for i in tracker_parameters("d3s2", "default")}
    assert set(LIVE_PARAMETERS) - tracker_live <= set(NODE_PARAMETERS)


def test_unknown_overrides_are_named_with_the_closest_parameter():
    declared = [*NODE_PARAMETERS, "use_sim_time", *(i.name for i in tracker_parameters("d3s2", "default"))]
    overrides = ["backend", "tracker.tracking_threshold", "use_sim_time",  # declared: no warning
                 "tracker.tracking_treshold", "device", "runtime.device", "qos.reliabilty", "zzz"]
    assert unknown_parameter_warnings(overrides, declared) == [
        "unknown parameter device is ignored; did you mean tracker.runtime.device? "
        "(the launch argument device sets it)",
        "unknown parameter qos.reliabilty is ignored; did you mean qos.reliability?",
        "unknown parameter runtime.device is ignored; did you mean tracker.runtime.device?",
        "unknown parameter tracker.tracking_treshold is ignored; did you mean tracker.tracking_threshold?",
        "unknown parameter zzz is ignored (ros2 param list shows the node's parameters)",
    ]
    assert unknown_parameter_warnings(declared, declared) == []
    # csrt has no runtime.device: the launch argument's parameter is not suggested where it does not exist.
    csrt = [*NODE_PARAMETERS, *(i.name for i in tracker_parameters("csrt", "default"))]
    (warning,) = unknown_parameter_warnings(["device"], csrt)
    assert "tracker.runtime.device" not in warning and warning.startswith("unknown parameter device is ignored")
