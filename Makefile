# Quickstart: `make migrate` (apply the migrations to the local endpoint) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
NODE_MODULES := emulator/node_modules/.package-lock.json

.PHONY: install migrate status test lint bench emulator emulator-stop clean

install: $(INSTALLED) $(NODE_MODULES)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

$(NODE_MODULES): emulator/package.json emulator/package-lock.json
	cd emulator && npm ci --no-audit --no-fund --loglevel=error

# Starts the local endpoint only when no COSMOS_ENDPOINT is set and nothing answers on localhost:8081.
emulator: $(NODE_MODULES)
	@if [ -z "$$COSMOS_ENDPOINT" ]; then emulator/ctl.sh start; else echo "COSMOS_ENDPOINT is set: not starting the local endpoint"; fi

emulator-stop:
	@emulator/ctl.sh stop

migrate: install emulator
	$(BIN)/cosmigrate up
	$(BIN)/cosmigrate status

status: install
	$(BIN)/cosmigrate status

lint: $(INSTALLED)
	$(BIN)/ruff check cosmigrate migrations tests bench
	$(BIN)/ruff format --check cosmigrate migrations tests bench
	$(BIN)/mypy
	$(BIN)/cosmigrate check

test: install lint
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) emulator/node_modules .local-endpoint .pytest_cache .mypy_cache .ruff_cache
