# dgsp course: every target sets up .venv itself the first time.
#   make course   execute every notebook in full mode -> figures/, figures/results.json, figures/RESULTS.md
#   make test     unit tests + every notebook through nbval, in quick mode (DGSP_QUICK=1)
#   make lab      JupyterLab on notebooks/
#   make bench    the benchmark scripts (targets from the issues), results into figures/results.json
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BUILD  := build
export DGSP_HOME := $(CURDIR)
export MPLBACKEND := Agg

.PHONY: course test lab bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -e '.[lab,test]'
	touch $(STAMP)

course: $(STAMP)
	mkdir -p $(BUILD)/notebooks figures
	@for nb in notebooks/[0-9]*.ipynb; do \
	  echo "== executing $$nb (full mode)"; start=$$(date +%s); \
	  $(PY) -m jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=-1 \
	    --ExecutePreprocessor.kernel_name=python3 --output-dir $(BUILD)/notebooks $$nb || exit 1; \
	  echo "== $$nb took $$(( $$(date +%s) - start )) s"; \
	done
	$(PY) -c "import dgsp.results as r; print('results table:', r.write_markdown())"

test: $(STAMP)
	DGSP_QUICK=1 DGSP_NO_DOWNLOAD=1 $(PY) -m pytest -p no:cacheprovider tests notebooks \
	  --nbval-lax --nbval-current-env -q

lab: $(STAMP)
	$(PY) -m jupyter lab notebooks

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(BUILD) checkpoints
