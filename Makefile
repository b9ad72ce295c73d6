# Two commands matter: `make run` and `make test`. See README.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-faults lint format bench migrate schedules clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/activate
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

# Development is opt-in: without DEBUG=true, manage.py uses the production settings (which
# need SECRET_KEY, FERNET_KEYS and PUBLIC_BASE_URL). The first run writes a .env asking for
# development; an existing .env is left as it is.
.env:
	printf '# Written by make: manage.py uses the development settings (README "Configuration").\nDEBUG=true\n' > $@

migrate: $(VENV)/.runtime | .env
	$(PY) manage.py migrate --noinput

schedules: migrate
	$(PY) manage.py setup_schedules

## run: web server on http://$(HOST):$(PORT) and a django-q2 cluster, until Ctrl-C
run: schedules
	$(PY) scripts/run.py --host $(HOST) --port $(PORT)

## test: the whole suite (SQLite unless DATABASE_URL is set)
test: $(VENV)/.dev
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	DJANGO_SETTINGS_MODULE=config.settings.test $(PY) manage.py makemigrations --check --dry-run

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## bench: performance figures (see bench/README.md)
bench: $(VENV)/.dev
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

## test-faults: fault injection against PostgreSQL with both brokers (see docs/RELIABILITY.md)
FAULTS_DATABASE_URL ?= postgres://root@127.0.0.1:5432/test
FAULTS_REDIS_URL ?= redis://127.0.0.1:6379/0
test-faults: $(VENV)/.dev
	env -u REDIS_URL RUN_FAULT_TESTS=1 DATABASE_URL=$(FAULTS_DATABASE_URL) $(PY) -m pytest tests/faults -p no:randomly $(PYTEST_ARGS)
	RUN_FAULT_TESTS=1 DATABASE_URL=$(FAULTS_DATABASE_URL) REDIS_URL=$(FAULTS_REDIS_URL) $(PY) -m pytest tests/faults $(PYTEST_ARGS)
