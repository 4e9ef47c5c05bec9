# talkface developer commands. Everything runs inside $(VENV), created on first use.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pinned so a CPU-only machine takes the CPU build and pulls no CUDA packages
TORCH := torch==2.13.0

.PHONY: install test demo batch-demo benchmark doctor clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements/lock.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q --no-deps -r requirements/lock.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

test: $(STAMP)
	TALKFACE_QUIET=1 $(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/talkface track --video examples/obama_weekly_20s.mp4 --out out/demo --save-motion out/demo/motion.npz
	$(BIN)/talkface finetune --video examples/obama_weekly_20s.mp4 --out out/demo/profile --preset draft
	$(BIN)/talkface speak --audio examples/speech_jfk_11s.flac --person out/demo/profile --out out/demo/speak.mp4
	$(BIN)/talkface speak --audio examples/speech_jfk_11s.flac --person out/demo/profile --out out/demo/speak_coarse.mp4 --no-refine
	@echo "overlay: out/demo/overlay.mp4   talking video: out/demo/speak.mp4 (coarse render: out/demo/speak_coarse.mp4)"

batch-demo: $(STAMP)
	$(BIN)/python examples/batch_demo.py

benchmark: $(STAMP)
	$(BIN)/python benchmarks/track_speed.py
	$(BIN)/python benchmarks/evaluate_checks.py
	$(BIN)/python benchmarks/motion.py
	$(BIN)/python scripts/corpus.py
	$(BIN)/python scripts/train_lips.py --no-ship
	$(BIN)/python benchmarks/lipsync.py
	$(BIN)/python benchmarks/render.py
	$(BIN)/python benchmarks/refine.py
	$(BIN)/python benchmarks/controls.py
	$(BIN)/python benchmarks/batch.py
	$(BIN)/python benchmarks/hardening.py

doctor: $(STAMP)
	$(BIN)/talkface doctor

clean:
	rm -rf $(VENV) out .pytest_cache
