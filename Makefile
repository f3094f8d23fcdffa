# Turnout: `make run` serves the gateway, `make test` checks everything, `make bench` measures it.
# Each target creates the virtual environment and installs what it needs on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 4000
CONFIG ?=

.PHONY: install bytecode run test lint format bench bench-keys bench-hostile bench-instructions check-mappings screenshots fidelity clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

# the package's own modules compiled ahead, as pip does for an installed wheel: a start then reads
# bytecode instead of compiling ~200 modules (~1 s), also where PYTHONDONTWRITEBYTECODE is set
bytecode: install
	$(BIN)/python -m compileall -q -j 0 engine

run: bytecode
	$(BIN)/turnout serve --host $(HOST) --port $(PORT) $(if $(CONFIG),--config $(CONFIG),)

lint: install
	$(BIN)/ruff check engine tests bench
	$(BIN)/ruff format --check engine tests bench
	$(BIN)/mypy
	$(BIN)/turnout mappings check
	$(BIN)/hadolint Dockerfile

test: lint
	$(BIN)/pytest

format: install
	$(BIN)/ruff format engine tests bench
	$(BIN)/ruff check --fix engine tests bench

bench: bytecode
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.router

bench-keys: install
	$(BIN)/python -m bench.keys

bench-hostile: install
	$(BIN)/python -m bench.hostile

# instructions per request under callgrind: a regression check the machine's noise does not move
bench-instructions: bytecode
	$(BIN)/python -m bench.instructions

# the console's browser tests, saving their screenshots where README.md shows them
screenshots: install
	TURNOUT_SCREENSHOTS=docs/screenshots $(BIN)/pytest tests/console -q

# the fidelity matrix, docs/fidelity.md, generated from the golden suite's data
fidelity: install
	$(BIN)/python -m tests.golden.fidelity

check-mappings: install
	$(BIN)/turnout mappings check

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache turnout.db .turnout artifacts
