# Estu — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export ESTU_DATA_DIR ?= var
TORCH_VERSION ?= 2.13.0

.PHONY: install run test index eval bench clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU torch first (the machine ships this wheel); otherwise sentence-transformers pulls CUDA builds
	$(BIN)/pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/pip install --quiet -e '.[test,st]'
	touch $(STAMP)

install: $(STAMP)

# Debian's chromium + chromedriver for the browser tests (they skip, saying why, where this cannot install)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  ( (apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
	     (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1)) || \
	    echo "chromium could not be installed: browser tests will be skipped" )

# builds the index and trains the NLU only when the corpus, data or embedder changed
index: install
	$(BIN)/estu kb build

run: index
	$(BIN)/estu db upgrade
	$(BIN)/estu serve

test: index browser
	$(BIN)/python -m pytest -q -p no:cacheprovider

eval: index
	$(BIN)/estu eval

bench: index
	$(BIN)/estu bench

clean:
	rm -rf $(VENV) var .pytest_cache
