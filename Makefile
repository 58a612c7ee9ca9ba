# Two commands do everything: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test install lab exercises clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/segkit demo

# SEGKIT_STRICT_CHECKS=1: an exercise check that a solution notebook fails raises, so nbval fails;
# the exercise notebooks' stubs only print "not implemented yet".
test: $(STAMP)
	SEGKIT_STRICT_CHECKS=1 OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist loadfile tests notebooks solutions exercises --nbval --nbval-sanitize-with notebooks/sanitize.cfg

# Regenerate exercises/ from solutions/ (both re-run and saved with outputs), then check them.
exercises: $(STAMP)
	$(VENV)/bin/segkit-course build
	$(VENV)/bin/segkit-course check

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks

clean-venv:
	rm -rf $(VENV)
