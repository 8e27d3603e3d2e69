# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv when it is missing and install the project into it (editable, with the dev extra).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test experiments experiments-action experiments-training install clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The planted-unit check, then tiny FastOnly and SlowOnly on synthetic motion over 3 training seeds (the README's
# table; threads pinned, since a training's numbers depend on them), the seed-0 checkpoints measured and compared.
demo: $(STAMP)
	$(PY) -m lit_stbias.demo
	$(PY) train.py default --seeds 0,1,2 --threads 2
	$(PY) analyze.py --ckpt runs/fast-synthetic-motion-seed0/checkpoints/last.ckpt --data synthetic:motion --seeds 0,1,2 --out runs/analysis/fast
	$(PY) analyze.py --ckpt runs/slow-synthetic-motion-seed0/checkpoints/last.ckpt --data synthetic:motion --seeds 0,1,2 --out runs/analysis/slow
	$(PY) analyze.py compare runs/analysis/fast runs/analysis/slow --labels FastOnly,SlowOnly --out runs/analysis/compare

# Every other figure of the README, after `make demo`, in two lanes of one CPU thread each: `make -j2 experiments`
# runs them side by side (about 1.5 hours on 2 cores).
experiments: experiments-action experiments-training

experiments-action: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) analyze.py ablate --ckpt runs/fast-synthetic-motion-seed0/checkpoints/last.ckpt --layers stage5 --data synthetic:motion --out runs/ablation/fast-motion
	$(PY) train.py shuffle-experiment --config configs/shuffle_experiment.yaml --tasks motion --threads 1
	OMP_NUM_THREADS=1 $(PY) train.py fit --config configs/fast_appearance.yaml --data.num_videos 1000 --trainer.max_epochs 8 --data.num_workers 0 --seed_everything 0 --out runs --name fast-appearance --overwrite true
	OMP_NUM_THREADS=1 $(PY) analyze.py ablate --ckpt runs/fast-appearance/checkpoints/last.ckpt --layers stage5 --data synthetic:appearance --threshold 0.99 --out runs/ablation/fast-appearance

experiments-training: $(STAMP)
	$(PY) train.py staticdropout-experiment --config configs/staticdropout_experiment.yaml --threads 1
	$(PY) train.py vos-experiment --config configs/vos_experiment.yaml --threads 1
	$(PY) train.py vos-experiment --config configs/vos_experiment.yaml --models fusionseg --data diffuse --out runs/vos-diffuse --threads 1

test: $(STAMP)
	$(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV)
