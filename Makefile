# The course's commands. A newcomer needs two: `make all` (main job) and `make test` (test suite). See README.md.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export TF_CPP_MIN_LOG_LEVEL ?= 2
PROFILE ?= sample

.PHONY: all setup notebooks site book test release setup-cells regen-lessons clean browser-deps graphviz-deps

## all: set up, execute every notebook in the sample profile, build the site and print where it is
all: setup notebooks site

## setup: create .venv with the pinned stack and the cnnbook package (idempotent)
setup: $(VENV)/.installed graphviz-deps

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

## notebooks: run every lesson, exercise source and student notebook with papermill (PROFILE=sample|full)
notebooks: setup
	$(PY) -m cnnbook.runner --profile $(PROFILE)

## site: build the static book from the executed lessons and the student notebooks (warnings are errors)
site: setup
	$(PY) -m cnnbook.site build

book: notebooks site

## browser-deps: install Debian's chromium for tests/test_browser.py if it is missing (idempotent; apt-get, root or sudo)
browser-deps:
	@test -x /usr/bin/chromium || { echo "installing chromium (Debian package) for the browser test"; \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

## graphviz-deps: install Debian's graphviz for keras.utils.plot_model (chapter 5's diagrams) if `dot` is missing (arch)
graphviz-deps:
	@command -v dot >/dev/null || { echo "installing graphviz (Debian package) for the architecture diagrams"; \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz; }

## test: set up, then run the whole test suite (what CI runs)
test: setup browser-deps
	$(PY) -m pytest -q

## release: regenerate notebooks/ from solutions/ with nbgrader (commit both)
release: setup
	$(PY) -m cnnbook.release generate

## setup-cells: insert or refresh the Colab setup cell in every notebook
setup-cells: setup
	$(PY) -m cnnbook.setupcell write

## regen-lessons: re-execute the lessons in place so their stored outputs are current (review the diff)
regen-lessons: setup
	$(PY) -m pytest -q tests/test_lessons.py --nb-force-regen || $(PY) -m pytest -q tests/test_lessons.py

clean:
	rm -rf _build
