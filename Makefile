# dgsp course: every target sets up .venv itself the first time.
#   make course   execute every notebook in full mode -> figures/, figures/results.json, figures/RESULTS.md
#   make test     unit tests, every notebook through nbval, and every notebook in a real browser
#                 (tests/test_browser.py, when Chromium is installed), in quick mode (DGSP_QUICK=1)
#   make lab      JupyterLab on notebooks/, figures inline
#   make bench    the benchmark scripts (targets from the issues), results into figures/results.json
#
# Nothing is exported globally except DGSP_HOME. In particular MPLBACKEND is *not*: a kernel
# started by `make lab` inherits make's environment, and MPLBACKEND=Agg there turns every
# figure into the text "<Figure size ... with N Axes>". Each recipe sets what it needs:
#   MPLBACKEND=Agg   only where nothing is displayed (tests, benchmarks)
#   DGSP_PUBLISH=1   only where the committed figures/ and results table are meant to be
#                    rewritten (course, bench); lab and test never set it
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SETUP_LOG := $(VENV)/setup.log
BUILD  := build
export DGSP_HOME := $(CURDIR)

# Known noise in the setup log, left out of what is printed (the full log stays in $(SETUP_LOG)):
# pip's "Location '...' is ignored" lines (an index folder named in some machines' pip config
# that does not exist) and setuptools' "Editable installation" banner.
define FILTER_SETUP_NOISE
sed -e "/WARNING: Location '.*' is ignored/d" \
    -e '/BuildBackendWarning: Editable installation/,/with strategy, WheelFile/d'
endef

.PHONY: course test lab bench clean

$(STAMP): pyproject.toml
	@echo "setting up $(VENV) (first time only, ~2 min)"
	@$(PYTHON) -m venv $(VENV)
	@start=$$(date +%s); \
	{ $(PY) -m pip install --upgrade --quiet pip && \
	  $(PY) -m pip install --quiet -e '.[lab,test]'; } > $(SETUP_LOG) 2>&1; status=$$?; \
	$(FILTER_SETUP_NOISE) $(SETUP_LOG); \
	if [ $$status -ne 0 ]; then echo "setup failed (exit $$status); full log: $(SETUP_LOG)"; exit $$status; fi; \
	echo "$(VENV) ready in $$(( $$(date +%s) - start )) s (log: $(SETUP_LOG))"
	@touch $(STAMP)

# The executed notebooks in build/notebooks keep their figures inline (no Agg here);
# dgsp.viz.savefig writes the same figures into figures/ (DGSP_PUBLISH=1).
course: $(STAMP)
	mkdir -p $(BUILD)/notebooks figures
	@for nb in notebooks/[0-9]*.ipynb; do \
	  echo "== executing $$nb (full mode)"; start=$$(date +%s); \
	  DGSP_PUBLISH=1 $(PY) -m jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=-1 \
	    --ExecutePreprocessor.kernel_name=python3 --output-dir $(BUILD)/notebooks $$nb || exit 1; \
	  echo "== $$nb took $$(( $$(date +%s) - start )) s"; \
	done
	DGSP_PUBLISH=1 $(PY) -c "import dgsp.results as r; print('results table:', r.write_markdown())"

# tests/test_browser.py starts its own JupyterLab without MPLBACKEND (it checks that figures show).
# Every process of one test run (pytest, the browser test's kernels, nbval's kernels) shares one fresh quick-mode
# folder (DGSP_QUICK_DIR), so a quick model trained once is loaded by content key afterwards; removed at the end.
# Two pytest processes run side by side: the unit tests, and the browser test followed by nbval (its output follows
# theirs). On two cores a fresh clone's make test took 841 s so, setup included (the unit tests 458 s, the browser
# test and nbval 746 s), against 1,109 s in one process. Each process keeps to one thread (OMP_NUM_THREADS=1): two
# processes with torch's two threads each on two cores slow tiny models badly. make lab and make course keep torch's
# default.
test: $(STAMP)
	@quick=$$(mktemp -d -t dgsp-test-XXXXXX); \
	run="env -u DGSP_PUBLISH MPLBACKEND=Agg DGSP_QUICK=1 DGSP_NO_DOWNLOAD=1 OMP_NUM_THREADS=1 DGSP_QUICK_DIR=$$quick \
	  $(PY) -m pytest -p no:cacheprovider"; \
	$$run tests/test_browser.py notebooks --nbval-lax --nbval-current-env -q > $$quick/notebooks.log 2>&1 & nbs=$$!; \
	$$run tests --ignore=tests/test_browser.py -q; status=$$?; \
	wait $$nbs; nbs_status=$$?; \
	echo; echo "== tests/test_browser.py and notebooks/ through nbval (run alongside; exit $$nbs_status)"; \
	cat $$quick/notebooks.log; rm -rf $$quick; [ $$status -eq 0 ] && [ $$nbs_status -eq 0 ]

# as root (e.g. in a container) jupyter refuses to start without --allow-root
lab: $(STAMP)
	env -u MPLBACKEND -u DGSP_PUBLISH $(PY) -m jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; \
	  MPLBACKEND=Agg DGSP_PUBLISH=1 $(PY) $$b || exit 1; done

clean:
	rm -rf $(BUILD) checkpoints
