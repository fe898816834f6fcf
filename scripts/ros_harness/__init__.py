"""Development harness for the segtrack node, run from a checkout only (never installed): start a node
process and drive it (client), the end-to-end demo, the overhead, memory and re-targeting benches, and the
venv's ROS environment."""

import json
from pathlib import Path
from typing import Optional


def save_figures(path: Optional[str], figures: dict) -> None:
    """Write a bench's figures as JSON at ``path`` (its folder made as needed); nothing when None."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(figures, indent=2) + "\n")
