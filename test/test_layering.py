"""The import structure: segtrack_core is layered (no import cycle, function-level imports included) and
never imports ROS; the installed ROS package is the node and its glue, not the development harness."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROS_MODULES = ("rclpy", "rosidl", "builtin_interfaces", "std_msgs", "sensor_msgs", "vision_msgs",
               "diagnostic_msgs", "segtrack_ros", "segtrack.msg", "segtrack.srv", "launch", "ament_index_python")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports, at any depth of the file (function-level too)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            stem = ".".join(base + ([node.module] if node.module else []))
            found.add(stem)
            found.update(f"{stem}.{alias.name}" for alias in node.names)  # submodules imported by name
    return found


def core_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in (ROOT / "segtrack_core").rglob("*.py")}
    return {name: {m for m in imports(path) if m in files and m != name} for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_segtrack_core_has_no_import_cycle():
    graph = core_graph()
    assert len(graph) > 20 and "segtrack_core.trackers.d3s2.tracker" in graph
    # A package importing its own submodules (``__init__`` re-exports) is not a cycle of the layers.
    layered = {name: {m for m in deps if not (name and m.startswith(name + "."))} for name, deps in graph.items()}
    assert cycles(layered) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_segtrack_core_never_imports_ros():
    for path in (ROOT / "segtrack_core").rglob("*.py"):
        ros = {m for m in imports(path) if any(m == r or m.startswith(r + ".") for r in ROS_MODULES)}
        assert not ros, f"{path.relative_to(ROOT)} imports {sorted(ros)}"


def test_the_installed_ros_package_is_the_node_without_the_harness():
    modules = {p.stem for p in (ROOT / "segtrack_ros").glob("*.py")}
    assert "node" in modules
    assert not modules & {"client", "demo", "bench", "env"}, "the development harness belongs in scripts/"
    for path in (ROOT / "segtrack_ros").glob("*.py"):
        text = path.read_text()
        assert "ros_harness" not in text and "shared/data" not in text and "parents[1]" not in text, path.name
