# Estu — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export ESTU_DATA_DIR ?= var

.PHONY: install run test index eval bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# builds the index and trains the NLU only when the corpus, data or embedder changed
index: install
	$(BIN)/estu kb build

run: index
	$(BIN)/estu serve

test: index
	$(BIN)/python -m pytest -q -p no:cacheprovider

eval: index
	$(BIN)/estu eval

bench: index
	$(BIN)/estu bench

clean:
	rm -rf $(VENV) var .pytest_cache
