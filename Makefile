# codexgw developer tasks. `make demo` builds the zipapp and shows the whole path working against
# the fake upstream; `make test` runs the test suite. Both install what they need into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test lint pyz demo bench screenshots clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "pip>=23"  # no --upgrade: no index lookups when it is new enough
	$(BIN)/python -m pip install -q -r requirements.lock -r requirements-dev.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check codexgw tests build_zipapp.py scripts

pyz: install
	$(BIN)/python build_zipapp.py

demo: pyz
	$(BIN)/python scripts/demo.py

bench: pyz
	$(BIN)/python -m bench

# The README's dashboard pictures: the browser tests save one PNG per page into docs/screenshots/.
screenshots: install
	CODEXGW_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q -p no:cacheprovider tests/browser/test_dashboard_live.py -k screenshots

clean:
	rm -rf dist build .demo *.egg-info .pytest_cache
