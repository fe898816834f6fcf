"""launch/tracker.launch.py and config/tracker.yaml agree with the node and with setup.py.

launch/launch_ros are on no package registry, so the launch file is checked statically (parsed with ast);
it is also run for real where launch_ros is installed (a ROS 2 workspace with segtrack built).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from prerequisites import needs_ros

from segtrack_ros.parameters import LAUNCH_OVERRIDES, NODE_NAME, NODE_PARAMETERS, launch_overrides, tracker_parameters

REPO = Path(__file__).resolve().parents[1]
LAUNCH_FILE = REPO / "launch" / "tracker.launch.py"
CONFIG_FILE = REPO / "config" / "tracker.yaml"
# Launch arguments that are not node parameters, and what they set instead.
NON_PARAMETER_ARGUMENTS = {"image": "remappings", "params_file": "parameters", "namespace": "namespace"}


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == name]


def keyword(call: ast.Call, name: str) -> ast.expr:
    return next(k.value for k in call.keywords if k.arg == name)


def launch_configurations(node: ast.AST) -> set[str]:
    return {c.args[0].value for c in calls(node, "LaunchConfiguration")}


@pytest.fixture(scope="module")
def launch_tree() -> ast.Module:
    return ast.parse(LAUNCH_FILE.read_text())


@pytest.fixture(scope="module")
def node_call(launch_tree) -> ast.Call:
    (node,) = calls(launch_tree, "Node")
    return node


def setup_arguments(monkeypatch) -> dict:
    """What setup.py passes to setuptools.setup (setup itself replaced)."""
    import runpy

    import setuptools

    arguments: dict = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: arguments.update(kwargs))
    runpy.run_path(str(REPO / "setup.py"))
    return arguments


def test_launch_runs_the_setup_py_console_script(node_call, monkeypatch):
    assert keyword(node_call, "package").value == "segtrack"
    executable = keyword(node_call, "executable").value
    assert keyword(node_call, "name").value == NODE_NAME
    setup = setup_arguments(monkeypatch)
    scripts = setup["entry_points"]["console_scripts"]
    targets = dict(s.replace(" ", "").split("=") for s in scripts)
    assert targets[executable] == "segtrack_ros.node:main"
    node_module = ast.parse((REPO / "segtrack_ros" / "node.py").read_text())
    assert any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in node_module.body)
    # setup.py installs the launch file and the configs it refers to into share/segtrack.
    data_files = dict(setup["data_files"])
    assert "launch/tracker.launch.py" in data_files["share/segtrack/launch"]
    assert {"config/tracker.yaml", "config/fastdds_shm.xml"} <= set(data_files["share/segtrack/config"])
    # Every parameter set, as install_ros_layout.sh installs them.
    for path in (REPO / "config").glob("*/*.yaml"):
        assert str(path.relative_to(REPO)) in data_files[f"share/segtrack/config/{path.parent.name}"]


def test_every_launch_argument_reaches_the_node(launch_tree, node_call):
    arguments = {c.args[0].value for c in calls(launch_tree, "DeclareLaunchArgument")}
    assert {"image", "params_file", "device", "backend", "use_compressed", "namespace"} <= arguments
    assert arguments == set(NON_PARAMETER_ARGUMENTS) | set(LAUNCH_OVERRIDES)
    declared = set(NODE_PARAMETERS) | {i.name for i in tracker_parameters("d3s2", "default")}
    assert set(LAUNCH_OVERRIDES.values()) <= declared
    # The parameter arguments reach the node through launch_overrides, on top of the params file.
    (function,) = [n for n in launch_tree.body if isinstance(n, ast.FunctionDef) and n.name == "segtrack_node"]
    assert node_call in list(ast.walk(function))
    assert calls(function, "launch_overrides") and "LAUNCH_OVERRIDES" in ast.unparse(function)
    parameters = ast.unparse(keyword(node_call, "parameters"))
    assert parameters.startswith("[LaunchConfiguration('params_file')]") and "overrides" in parameters
    for argument, where in NON_PARAMETER_ARGUMENTS.items():
        assert argument in launch_configurations(keyword(node_call, where)), (argument, where)
    (remapping,) = keyword(node_call, "remappings").elts
    assert remapping.elts[0].value == "image"  # the topic the node subscribes to


def test_parameter_launch_arguments_default_to_not_given(launch_tree):
    # A default here would override the params file's value (issue 9: backend: csrt in a params file
    # ran d3s2).
    for call in calls(launch_tree, "DeclareLaunchArgument"):
        if call.args[0].value in LAUNCH_OVERRIDES:
            assert keyword(call, "default_value").value == "", call.args[0].value


def test_launch_overrides_keep_only_the_arguments_given():
    assert launch_overrides({"backend": "", "device": "", "use_compressed": ""}) == {}
    assert launch_overrides({"backend": "csrt", "device": "", "use_compressed": ""}) == {"backend": "csrt"}
    assert launch_overrides({"device": "cuda:1", "use_compressed": "True"}) == {
        "tracker.runtime.device": "cuda:1", "use_compressed": True}
    assert launch_overrides({"use_compressed": "false"}) == {"use_compressed": False}
    with pytest.raises(ValueError, match="use_compressed must be true or false"):
        launch_overrides({"use_compressed": "yes please"})


def test_launch_points_fast_dds_at_the_shipped_profile(launch_tree):
    source = LAUNCH_FILE.read_text()
    assert "fastdds_shm.xml" in source
    assert {"FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE"} <= {
        c.value for c in ast.walk(launch_tree) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    assert (REPO / "config" / "fastdds_shm.xml").is_file()


def test_the_shipped_params_file_restates_no_default():
    config = yaml.safe_load(CONFIG_FILE.read_text())
    key = f"/**/{NODE_NAME}"  # matches the node in any namespace
    assert config == {key: {"ros__parameters": {}}}


@needs_ros("a node given the shipped params file plus the launch arguments' parameters")
def test_the_launch_arguments_reach_a_node_as_declared_parameters():
    """What the launch file passes (params file, then launch_overrides) started without launch_ros, which
    CI cannot have: every override must be a parameter the node declares, with the value given."""
    from ros_harness.client import NodeProcess, TrackerClient, configure_this_process

    domain_id = 1 + (os.getpid() + 83) % 100
    overrides = launch_overrides({"backend": "d3s2", "device": "cpu", "use_compressed": "true"})
    configure_this_process(domain_id)
    with NodeProcess(domain_id, overrides, params_file=CONFIG_FILE) as node, TrackerClient(domain_id) as client:
        assert client.wait_for_services(60), f"the node did not configure; log:\n{node.log()}"
        assert client.get_parameters(*overrides) == overrides, node.log()


def test_launch_file_starts_a_working_node(tmp_path, load_davis_frames):
    if importlib.util.find_spec("launch_ros") is None:
        # Not `missing()`: launch_ros is on no package registry, so CI cannot have it either.
        pytest.skip("launch_ros is not installed (it is on no package registry), so a real `ros2 launch` of "
                    "tracker.launch.py was not checked; the launch file's static checks above ran")
    from ament_index_python.packages import get_package_prefix

    # With launch_ros present, the install (venv layout or colcon) must be one launch can use.
    prefix = Path(get_package_prefix("segtrack"))
    assert (prefix / "lib" / "segtrack" / "segtrack_node").exists(), f"{prefix} has no lib/segtrack/segtrack_node"
    from segtrack_core.geometry import mask_to_box
    from ros_harness.client import TrackerClient, configure_this_process, isolated_ros_env

    domain_id = 1 + (os.getpid() + 77) % 100
    script = textwrap.dedent(f"""
        import sys
        from launch import LaunchService
        from launch.actions import IncludeLaunchDescription
        from launch.launch_description_sources import PythonLaunchDescriptionSource
        service = LaunchService()
        arguments = {{"image": "/launch_test/image", "backend": "csrt", "namespace": "launch_test"}}
        service.include_launch_description(IncludeLaunchDescription(
            PythonLaunchDescriptionSource({str(LAUNCH_FILE)!r}), launch_arguments=arguments.items()))
        sys.exit(service.run())
    """)
    log = open(tmp_path / "launch.log", "w")
    process = subprocess.Popen([sys.executable, "-c", script], env=isolated_ros_env(domain_id, str(tmp_path)),
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        frames, masks = load_davis_frames("car-shadow", 3)
        configure_this_process(domain_id, str(tmp_path))
        with TrackerClient(domain_id, namespace="/launch_test", image_topic="/launch_test/image") as client:
            assert client.wait_for_services(60), (tmp_path / "launch.log").read_text()
            assert client.wait_for_subscriber(10)
            assert client.start_tracking(frames[0], mask_to_box(masks[0]).as_tuple()).success
            assert client.track_frame(frames[1]) is not None
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_colcon_installs_the_node_executable_where_launch_looks():
    cmake = (REPO / "CMakeLists.txt").read_text()
    assert "install(PROGRAMS scripts/segtrack_node DESTINATION lib/${PROJECT_NAME})" in cmake
    script = REPO / "scripts" / "segtrack_node"
    assert os.access(script, os.X_OK) and script.read_text().startswith("#!")
    assert "segtrack_ros.node" in script.read_text()


def test_colcon_installs_the_segtrack_command_and_registers_the_tests():
    cmake = (REPO / "CMakeLists.txt").read_text()
    assert "install(PROGRAMS scripts/segtrack DESTINATION bin)" in cmake
    testing = cmake[cmake.index("if(BUILD_TESTING)"):]
    assert "find_package(ament_cmake_pytest REQUIRED)" in testing
    assert "ament_add_pytest_test(segtrack_pytest test " in testing
    assert "<test_depend>ament_cmake_pytest</test_depend>" in (REPO / "package.xml").read_text()
    # The installed command runs what pip's console script runs.
    setup = ast.parse((REPO / "setup.py").read_text())
    (setup_call,) = calls(setup, "setup")
    scripts = dict(s.replace(" ", "").split("=") for s in
                   ast.literal_eval(keyword(setup_call, "entry_points"))["console_scripts"])
    script = REPO / "scripts" / "segtrack"
    assert os.access(script, os.X_OK) and script.read_text().startswith("#!/usr/bin/env python3")
    module, function = scripts["segtrack"].split(":")
    assert f"from {module} import {function}" in script.read_text()
    result = subprocess.run([sys.executable, str(script), "backends"], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert result.returncode == 0 and "csrt" in result.stdout, result.stderr


def test_the_installed_ros_package_needs_no_checkout():
    # colcon and pip install segtrack_ros; the harness (scripts/ros_harness) and the repository's layout
    # exist only in a checkout.
    for path in (REPO / "segtrack_ros").glob("*.py"):
        text = path.read_text()
        for needle in ("ros_harness", "REPO_ROOT", ".parents[", "default_data_root"):
            assert needle not in text, f"{path.name} refers to {needle}"
