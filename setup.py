from setuptools import find_packages, setup

setup(
    name="segtrack",
    version="0.1.0",
    description="Single-object segmentation tracking (D3S2-style) with a ROS 2 node",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["segtrack_core", "segtrack_core.*", "segtrack_ros", "segtrack_ros.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/segtrack"]),
        ("share/segtrack", ["package.xml"]),
        ("share/segtrack/launch", ["launch/tracker.launch.py"]),
        ("share/segtrack/config", ["config/tracker.yaml", "config/fastdds_shm.xml"]),
        ("share/segtrack/config/d3s2", ["config/d3s2/default.yaml", "config/d3s2/cuda_fp16.yaml"]),
        ("share/segtrack/config/siammask", ["config/siammask/davis.yaml", "config/siammask/vot.yaml"]),
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
