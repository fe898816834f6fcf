# Two entry points on a fresh machine: `make demo` (main job) and `make test` (the suite CI runs).
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data
OUT ?= out

.PHONY: venv ros demo test track-demo eval bench ros-demo ros-bench ros-memory ros-retarget clean

venv:
	./scripts/setup_venv.sh

ros: venv
	./scripts/setup_ros.sh

# Main job: the ROS node end to end (30 s of drone footage of a boat played as a camera topic at its
# recorded 10 fps, target set through ~/set_target); overlay video + summary in $(OUT)/ros_demo.
demo: ros-demo

# The tracker library alone: track a DAVIS clip from its first-frame box, write an overlay video + masks.
track-demo: venv
	$(VENV)/bin/segtrack track $(DATA)/davis2016/car-shadow/frames --box-from-mask $(DATA)/davis2016/car-shadow/masks/00000.png --out $(OUT)/demo.mp4 --save-masks $(OUT)/demo_masks

test: venv ros
	$(PY) -m pytest -q test

# The whole dev set (every layout under $(DATA)) from boxes, with CSRT on the same frames; then the
# mask-annotated clips from their masks. Raw predictions are kept in each --out folder
# (<backend>/<parameter set>/<sequence>/): `segtrack score $(OUT)/eval_box` re-scores them without tracking.
eval: venv
	$(VENV)/bin/segtrack eval $(DATA) --init box --baseline csrt --out $(OUT)/eval_box
	$(VENV)/bin/segtrack eval $(DATA) --format davis --init mask --baseline csrt --out $(OUT)/eval_mask

bench: venv
	$(VENV)/bin/segtrack bench --sequence $(DATA)/davis2016/car-shadow --width 854 --height 480 --device cpu --baseline csrt

# The ROS node end to end: UAV123's boat1 (1280x720) at its recorded 10 fps, target set via ~/set_target.
ros-demo: venv ros
	PYTHONPATH=scripts $(PY) -m ros_harness.demo --frames $(DATA)/boxes/boat1/imgs --fps 10 --out $(OUT)/ros_demo

# The node's own latency overhead (latency minus tracker time) at 640x480 and 1920x1080.
ros-bench: venv ros
	PYTHONPATH=scripts $(PY) -m ros_harness.bench --sequence $(DATA)/davis2016/car-shadow --out $(OUT)/ros_bench.json

# The node's resident memory over mixed 640x480 / 720p / 1080p segments: where it levels off.
ros-memory: venv ros
	PYTHONPATH=scripts $(PY) -m ros_harness.memory --out $(OUT)/ros_memory.json

# ~/set_target every 12 frames while boat1 plays at 10 fps: answer time, and tracking meanwhile.
ros-retarget: venv ros
	PYTHONPATH=scripts $(PY) -m ros_harness.retarget --out $(OUT)/ros_retarget.json

clean:
	rm -rf $(VENV) $(OUT) build install log
