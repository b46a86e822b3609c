# Quickstart: `make migrate` (apply the migrations to the local endpoint) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install migrate status test lint bench emulator emulator-stop clean

# The Python package (editable, with the dev tools) and the local endpoint's npm dependencies (cached per lockfile).
install: $(INSTALLED)
	@$(BIN)/python -m cosmigrate.testing.endpoint install >/dev/null

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# Starts the local endpoint only when no COSMOS_ENDPOINT is set and nothing answers on localhost:8081.
emulator: install
	@if [ -z "$$COSMOS_ENDPOINT" ]; then $(BIN)/python -m cosmigrate.testing.endpoint start; else echo "COSMOS_ENDPOINT is set: not starting the local endpoint"; fi

emulator-stop:
	@$(BIN)/python -m cosmigrate.testing.endpoint stop

migrate: install emulator
	$(BIN)/cosmigrate up --create-database
	$(BIN)/cosmigrate status

status: install
	$(BIN)/cosmigrate status

lint: $(INSTALLED)
	$(BIN)/ruff check cosmigrate migrations tests bench
	$(BIN)/ruff format --check cosmigrate migrations tests bench
	$(BIN)/mypy
	$(BIN)/cosmigrate check

# The suite in 6 processes (pytest-xdist; each has its own local endpoint): most tests wait on the network, a
# lease or an index transformation, so 6 keep 2 cores busy. `pytest tests/test_x.py` alone runs in one process.
# Then the contract tests again with the local endpoint in Entra ID mode (no key: the operations through the ARM
# implementation, documents with a token): the seed's migrations, recovery, the lock, data steps, every property.
ENTRA_TESTS = tests/test_migrations_seed.py tests/test_recovery.py tests/test_lock.py tests/test_data_migrations.py \
	tests/test_every_property.py
test: install lint
	$(BIN)/python -m pytest -n 6 --dist worksteal
	COSMIGRATE_TEST_AUTH=entra $(BIN)/python -m pytest -n 6 --dist worksteal $(ENTRA_TESTS)

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .local-endpoint .pytest_cache .mypy_cache .ruff_cache
