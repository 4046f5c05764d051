# The course's commands. A newcomer needs two: `make all` (main job) and `make test` (test suite). See README.md.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export TF_CPP_MIN_LOG_LEVEL ?= 2
PROFILE ?= sample
# pytest-xdist workers of `make test`: on 2 cores, 3 keep both busy (with 2, 1.85 cores were busy on average and the
# suite took 20 min 15 s; many tests wait on kernels and subprocesses, benchmarks/RESULTS.md)
JOBS ?= 3
# notebooks the runner executes at once, one compute thread each: on 2 cores, 3 keep both busy (a kernel idles
# between cells and while it starts); 2 left about a fifth of the CPU unused (README, "The two commands")
RUN_JOBS ?= 3
BACKEND ?= tensorflow
STACK ?= colab
COMPAT_EXTRA ?=

.PHONY: all setup notebooks site book test release setup-cells regen-lessons clean browser-deps graphviz-deps explore compat release-tag

## all: set up, execute every notebook in the sample profile, build the site and print where it is
all: setup notebooks site

## setup: create .venv with the pinned stack and the cnnbook package (idempotent); graphviz is optional (below)
setup: $(VENV)/.installed graphviz-deps

$(VENV)/.installed: requirements.txt pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	@# the build tooling (coursetools/) is not in the cnnbook package: a path file puts the checkout on sys.path
	echo "$(CURDIR)" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/coursetools.pth"
	touch $@

## notebooks: run every lesson, exercise source and student notebook with papermill (PROFILE=sample|full)
notebooks: setup
	$(PY) -m coursetools.runner --profile $(PROFILE) --jobs $(RUN_JOBS) --backend $(BACKEND)

## site: build the static book from the executed lessons and the student notebooks (warnings are errors)
site: setup
	$(PY) -m coursetools.site build

book: notebooks site

## browser-deps: install Debian's chromium for tests/test_browser.py if it is missing (idempotent; apt-get, root or sudo)
browser-deps:
	@bash coursetools/optional_apt.sh chromium /usr/bin/chromium "tests/test_browser.py is skipped" $(if $(filter true,$(CI)),required)

## graphviz-deps: optional: install Debian's graphviz (chapter 5's diagrams) if `dot` is missing and this machine
## allows it (apt-get, root or sudo without a password); otherwise say once how to get it, and never fail: without it
## chapter 5 prints each network's text summary instead of its diagram
graphviz-deps:
	@bash coursetools/optional_apt.sh graphviz dot "chapter 5 prints each network's text summary instead of its diagram"

## test: set up, run the lessons and student notebooks once (through the runner's cache: what `make all` ran is
## reused), then the suite on $(JOBS) pytest-xdist workers, each test module whole on one worker (its module fixtures
## built once), the heaviest modules first (tests/conftest.py; --no-loadscope-reorder keeps that order instead of
## xdist's order by test count). The exercise sources are not run here in `sample`: tests/test_autograder_chapters.py
## grades each one through the real grader (every visible and hidden test), which is a stronger run of the same
## notebook; tests/test_full_notebooks.py runs every lesson and exercise source in `full` against the test mirror.
test: setup browser-deps
	$(PY) -m coursetools.runner --profile sample --jobs $(RUN_JOBS) --backend $(BACKEND) --kinds lesson,student
	$(PY) -m pytest -q -n $(JOBS) --dist loadfile --no-loadscope-reorder

## compat: run every lesson and every exercise's visible tests on a supported stack (STACK=colab|pinned|latest|jax,
## BACKEND=tensorflow|jax|torch; coursetools/stacks.toml), in its own venv .venv-compat-STACK; PROFILE=full needs the
## network; COMPAT_EXTRA adds pip requirements to that venv (a GPU runner: COMPAT_EXTRA='jax[cuda13]')
compat: setup
	nice -n 10 $(PY) -m coursetools.compat $(STACK) --backend $(BACKEND) --jobs $(RUN_JOBS) --profile $(PROFILE) \
	  $(if $(COMPAT_EXTRA),--extra $(foreach e,$(COMPAT_EXTRA),'$(e)'))

## explore: opt-in random exploration of the property tests (Hypothesis profile `explore`; CI stays derandomised)
explore: setup
	HYPOTHESIS_PROFILE=explore $(PY) -m pytest -q -m "not slow" -k "property or impulse" tests/

## release: regenerate notebooks/ from solutions/ with nbgrader (commit both)
release: setup
	$(PY) -m coursetools.release generate

## setup-cells: insert or refresh the Colab setup cell in every notebook
setup-cells: setup
	$(PY) -m coursetools.setupcell write

## regen-lessons: re-execute the lessons in place so their stored outputs are current (review the diff)
regen-lessons: setup
	$(PY) -m coursetools.runner book/*.ipynb --jobs $(RUN_JOBS)
	$(PY) -m pytest -q tests/test_lessons.py --nb-force-regen && $(PY) -m pytest -q tests/test_lessons.py

## release-tag: check that the package version, the Colab setup cell's ref and CHANGELOG.md agree, and print the
## `git tag` and `git push` commands of the release (it tags and pushes nothing itself; CONTRIBUTING.md, "Releases")
release-tag: $(VENV)/.installed
	$(PY) -m coursetools.versioning

clean:
	rm -rf _build  # the runner's cache too (_build/cache)
