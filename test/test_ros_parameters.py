"""Node parameters -> backend config overrides (pure: no ROS needed)."""

from __future__ import annotations


from segtrack_core import create_tracker
from segtrack_ros.parameters import LIVE_PARAMETERS, PARAMETERS, backend_overrides, parameter_error


def defaults(**changes):
    values = {name: default for name, (default, _) in PARAMETERS.items()}
    values.update(changes)
    return values


def test_unset_parameters_never_override_the_backend_config():
    warnings = []
    assert backend_overrides("csrt", defaults(), warnings.append) == {}
    assert warnings == []


def test_settings_a_backend_lacks_are_ignored_with_a_warning():
    warnings = []
    overrides = backend_overrides("csrt", defaults(weights="/models/lite0.pt", device="cpu", half=True),
                                  warnings.append)
    assert overrides == {}
    assert len(warnings) == 3 and all("ignored" in w and "csrt" in w for w in warnings)
    assert any("weights='/models/lite0.pt'" in w for w in warnings)


def test_settings_the_backend_has_are_passed_through_and_build_a_tracker(tmp_path):
    warnings = []
    overrides = backend_overrides("d3s2", defaults(device="cpu", tracking_threshold=0.55, lost_threshold=0.25),
                                  warnings.append)
    assert overrides == {"runtime.device": "cpu", "tracking_threshold": 0.55, "lost_threshold": 0.25}
    assert warnings == []
    tracker = create_tracker("d3s2", None, **overrides)
    assert tracker.config.tracking_threshold == 0.55 and str(tracker.device) == "cpu"
    weights = backend_overrides("d3s2", defaults(weights=str(tmp_path / "w.pt")), warnings.append)
    assert weights == {"features.weights": str(tmp_path / "w.pt")} and warnings == []


def test_parameter_values_are_checked(tmp_path):
    assert all(parameter_error(name, default) is None for name, (default, _) in PARAMETERS.items())
    assert "not registered" in parameter_error("backend", "nope")
    assert parameter_error("device", "cuda:1") is None and "cuda:N" in parameter_error("device", "gpu")
    assert "not a file" in parameter_error("tracker_config", str(tmp_path / "missing.yaml"))
    assert parameter_error("tracking_threshold", -1.0) is None and parameter_error("lost_threshold", 0.2) is None
    assert "(0, 1]" in parameter_error("lost_threshold", 0.0) and "(0, 1]" in parameter_error("lost_threshold", 1.5)
    for name in ("frame_buffer_size", "qos.depth", "service_queue_depth"):
        assert "at least 1" in parameter_error(name, 0)
    assert "best_effort or reliable" in parameter_error("qos.reliability", "sometimes")
    assert set(LIVE_PARAMETERS) <= set(PARAMETERS)
