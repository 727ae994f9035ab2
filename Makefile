# warmline: two commands do all the set-up on a fresh Debian or Ubuntu machine.
#   make demo   install what is missing, start the lab (Asterisk + simulated callees) and the service
#   make test   install what is missing, then run every test against real Asterisk, PostgreSQL, Mosquitto
# A second run reinstalls nothing: each step is skipped when its stamp is newer than its inputs.

SHELL := /bin/bash
# The first Python that runs and is 3.11 or 3.12 (pjsua2 has wheels for those); pyenv shims may not run.
PYTHON ?= $(shell for p in python3 python3.12 python3.11; do $$p -c 'import sys; sys.exit(sys.version_info[:2] not in ((3,11),(3,12)))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMPS := var/.stamps
# Lab tests mostly wait on real calls, so test files run eight at a time on two cores (each lab module
# has its own ports); a test file stays on one worker, so its module-scoped lab is started once.
# docs/testing.md says why eight.
TEST_WORKERS ?= 8
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: all demo test i18n lint unit integration e2e bench install system services asterisk clean lab-stop

all: install

install: $(STAMPS)/venv $(STAMPS)/system-test asterisk

$(STAMPS):
	@mkdir -p $@

$(STAMPS)/system: scripts/install-system.sh | $(STAMPS)
	bash scripts/install-system.sh
	@touch $@

$(STAMPS)/system-test: scripts/install-system.sh $(STAMPS)/system | $(STAMPS)
	bash scripts/install-system.sh test
	@touch $@

# scripts/make-venv.sh says how a new clone's environment is copied from a template on the machine.
$(STAMPS)/venv: pyproject.toml scripts/make-venv.sh $(STAMPS)/system | $(STAMPS)
	@[ -n "$(PYTHON)" ] || { echo "warmline needs Python 3.11 or 3.12 (pjsua2 has wheels for those)"; exit 1; }
	bash scripts/make-venv.sh $(PYTHON) $(VENV)
	@touch $@

asterisk: $(STAMPS)/system
	@bash scripts/install-asterisk.sh

services: $(STAMPS)/system
	@bash scripts/services.sh

# Extract every marked string into the catalogues (core/locale); translate what it reports.
i18n: $(STAMPS)/venv
	$(BIN)/python -m core.i18n_extract

# mypy's cache lives on the machine, not in the clone, so a fresh clone (as CI makes) starts warm.
MYPY_CACHE_DIR ?= $(shell mkdir -p /var/cache/warmline/mypy 2>/dev/null && [ -w /var/cache/warmline/mypy ] && echo /var/cache/warmline/mypy || echo .mypy_cache)
export MYPY_CACHE_DIR

lint: $(STAMPS)/venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

test: install services
	bash scripts/run-tests.sh $(TEST_WORKERS)

unit: $(STAMPS)/venv services
	$(BIN)/pytest -q tests/unit

integration: install services
	$(BIN)/pytest -q tests/integration

e2e: install services
	$(BIN)/pytest -q tests/e2e

bench: install services
	$(BIN)/pytest -q -s -m bench tests/bench

demo: install services
	$(BIN)/warmline demo

lab-stop:
	-$(BIN)/warmline lab stop

clean: lab-stop
	rm -rf $(VENV) var/.stamps .mypy_cache .ruff_cache .pytest_cache
