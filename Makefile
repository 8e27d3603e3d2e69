# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv when it is missing and install the project into it (editable, with the dev extra).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m lit_stbias.demo
	$(PY) train.py
	$(PY) analyze.py --ckpt runs/fast-synthetic-motion/checkpoints/last.ckpt --data synthetic:motion --out runs/analysis/fast
	$(PY) analyze.py --ckpt runs/slow-synthetic-motion/checkpoints/last.ckpt --data synthetic:motion --out runs/analysis/slow
	$(PY) analyze.py compare runs/analysis/fast runs/analysis/slow --labels FastOnly,SlowOnly --out runs/analysis/compare

test: $(STAMP)
	$(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV)
