# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv when it is missing and install the project into it (editable, with the dev extra).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test experiments install clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The planted-unit check, then tiny FastOnly and SlowOnly on synthetic motion over 3 training seeds (the README's
# table), the seed-0 checkpoints measured with analyze.py and compared.
demo: $(STAMP)
	$(PY) -m lit_stbias.demo
	$(PY) train.py default --seeds 0,1,2
	$(PY) analyze.py --ckpt runs/fast-synthetic-motion-seed0/checkpoints/last.ckpt --data synthetic:motion --seeds 0,1,2 --out runs/analysis/fast
	$(PY) analyze.py --ckpt runs/slow-synthetic-motion-seed0/checkpoints/last.ckpt --data synthetic:motion --seeds 0,1,2 --out runs/analysis/slow
	$(PY) analyze.py compare runs/analysis/fast runs/analysis/slow --labels FastOnly,SlowOnly --out runs/analysis/compare

# Every other figure of the README and docs, in the order they build on each other (after `make demo`; about
# 1.5 hours on 2 CPU cores): unit ablations, the shuffle, StaticDropout and VOS experiments.
experiments: $(STAMP)
	$(PY) analyze.py ablate --ckpt runs/fast-synthetic-motion-seed0/checkpoints/last.ckpt --layers stage5 --data synthetic:motion --out runs/ablation/fast-motion
	$(PY) train.py shuffle-experiment --config configs/shuffle_experiment.yaml
	$(PY) analyze.py ablate --ckpt runs/shuffle/fast-appearance-seed0/checkpoints/last.ckpt --layers stage5 --data synthetic:appearance --out runs/ablation/fast-appearance
	$(PY) train.py staticdropout-experiment --config configs/staticdropout_experiment.yaml
	$(PY) train.py vos-experiment --config configs/vos_experiment.yaml
	$(PY) train.py vos-experiment --config configs/vos_experiment.yaml --models fusionseg --data diffuse --out runs/vos-diffuse

test: $(STAMP)
	$(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV)
