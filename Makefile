# Two entry points on a fresh machine: `make demo` (main job) and `make test` (the suite CI runs).
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data
OUT ?= out

.PHONY: venv ros demo test track-demo eval bench clean

venv:
	./scripts/setup_venv.sh

ros: venv
	./scripts/setup_ros.sh

# Track a real DAVIS sequence from its first-frame box and write an overlay video + masks.
demo: venv
	$(VENV)/bin/segtrack track $(DATA)/davis2016/car-shadow/frames --box-from-mask $(DATA)/davis2016/car-shadow/masks/00000.png --out $(OUT)/demo.mp4 --save-masks $(OUT)/demo_masks

test: venv ros
	$(PY) -m pytest -q test

eval: venv
	$(VENV)/bin/segtrack eval $(DATA)/davis2016 --format davis --init box --baseline csrt --out $(OUT)/eval_davis
	$(VENV)/bin/segtrack eval $(DATA)/vot2015 --format vot --init box --baseline csrt --out $(OUT)/eval_vot

bench: venv
	$(VENV)/bin/segtrack bench --sequence $(DATA)/davis2016/car-shadow --width 854 --height 480 --device cpu --baseline csrt

clean:
	rm -rf $(VENV) $(OUT) build install log
