from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
# Every parameter set, config/<backend>/<set>.yaml, as install_ros_layout.sh installs them.
PARAMETER_SETS = [(f"share/segtrack/config/{folder.name}",
                   sorted(str(p.relative_to(HERE)) for p in folder.glob("*.yaml")))
                  for folder in sorted((HERE / "config").iterdir()) if folder.is_dir()]

setup(
    name="segtrack",
    version="0.1.0",
    description="Single-object segmentation tracking (D3S2-style) with a ROS 2 node",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["segtrack_core", "segtrack_core.*", "segtrack_ros", "segtrack_ros.*"]),
    # The trained D3S2 pathways (docs/training.md: data, licences, command) ship with the library.
    package_data={"segtrack_core": ["weights/*.pt"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/segtrack"]),
        ("share/segtrack", ["package.xml"]),
        ("share/segtrack/launch", ["launch/tracker.launch.py"]),
        ("share/segtrack/config", ["config/tracker.yaml", "config/fastdds_shm.xml"]),
        *PARAMETER_SETS,
    ],
    # Runtime needs are pinned in requirements.txt (torch must be exactly the local 2.13.0 CPU wheel).
    install_requires=[],
    entry_points={
        "console_scripts": [
            "segtrack = segtrack_core.cli:main",
            "segtrack_node = segtrack_ros.node:main",
        ],
    },
)
