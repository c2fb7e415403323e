# Two commands for a fresh machine with Python >= 3.11: `make run` and `make test`.
# The database is $DATABASE_URL when set, else an embedded PostgreSQL under .data/ (see config/database.py).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 3
# Test processes in parallel (pytest-xdist); 0 runs in-process.
TEST_WORKERS ?= 2
MANAGE := $(BIN)/python manage.py
# Local runs keep a generated key in .data/secret_key and sign JWTs with a key derived from it
# (config/secret_key.py); production sets SECRET_KEY and JWT_SIGNING_KEY itself.
export SECRET_KEY ?= $(shell $(PYTHON) -m config.secret_key)
export JWT_SIGNING_KEY ?= $(shell $(PYTHON) -m config.secret_key --jwt)
# E-mail links point at the server `make run` starts.
export PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)

.PHONY: run stop test install db browser lint format checks pytest bench clean

install: $(STAMP)

$(STAMP):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

# Starts the embedded server when DATABASE_URL is unset, creates the app, worker and owner roles
# (see docs/database-roles.md), then migrates as the owner, which also stores the row-level
# security key. The web connects as the app role; the cross-tenant commands as the worker.
db: install
	@$(BIN)/python -m config.database provision
	@DATABASE_ROLE=owner $(MANAGE) migrate --no-input -v 0

run: db
	@$(MANAGE) seed_demo
	@$(MANAGE) collectstatic --no-input -v 0
	@echo ""
	@echo "  API docs   http://$(HOST):$(PORT)/api/docs/"
	@echo "  API        http://$(HOST):$(PORT)/api/"
	@echo "  Admin      http://$(HOST):$(PORT)/admin/   (admin@acme.example)"
	@echo "  Health     http://$(HOST):$(PORT)/healthz  http://$(HOST):$(PORT)/readyz"
	@echo "  Log in:    curl -s -X POST http://$(HOST):$(PORT)/api/auth/token/ -H 'Content-Type: application/json' -d '{\"email\": \"legal@acme.example\", \"password\": \"demo-pass-2026\"}'"
	@echo ""
	@# Workers run in the background beside the server, one line each adding its process id to
	@# $$workers, and stop with it: the trap ends them when the server exits or on Ctrl-C.
	@# The delivery worker sends the queued e-mails (the console backend prints them here, with
	@# their approval links) and webhooks; the documents worker writes approval certificates and
	@# sends signing links.
	@workers=""; trap 'kill $$workers 2>/dev/null; wait' EXIT INT TERM; \
	$(MANAGE) deliver_notifications & workers="$$workers $$!"; \
	$(MANAGE) generate_documents & workers="$$workers $$!"; \
	if [ "$${DEBUG:-0}" = "1" ]; then \
		$(MANAGE) runserver $(HOST):$(PORT); \
	else \
		ALLOWED_HOSTS="$${ALLOWED_HOSTS:-$(HOST),localhost,127.0.0.1}" \
		SESSION_COOKIE_SECURE=0 CSRF_COOKIE_SECURE=0 \
		$(BIN)/gunicorn config.wsgi --config python:config.gunicorn \
			--bind $(HOST):$(PORT) --workers $(WORKERS) --forwarded-allow-ips=127.0.0.1; \
	fi

# Stops the embedded PostgreSQL that `make run` and `make test` leave running (a no-op, with a
# message, when DATABASE_URL names the server). Its data stays under .data/.
stop:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m config.database stop; \
	else echo "No $(VENV) here, so no embedded PostgreSQL was started: nothing to stop."; fi

# lint-imports checks the import contract in pyproject.toml: no import cycle between the apps.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache --no-logo

checks: db
	$(MANAGE) check --fail-level WARNING
	@# The deploy check runs with the settings a TLS-terminated production would use, and with
	@# the row-level security key the database holds (it checks that they agree: tenancy.E004),
	@# derived from the real SECRET_KEY before the throwaway one is assigned.
	RLS_SIGNING_KEY=$$($(BIN)/python -m config.secret_key --rls) \
		DEBUG=0 SECRET_KEY=$$($(BIN)/python -m config.secret_key --ephemeral) \
		JWT_SIGNING_KEY=$$($(BIN)/python -m config.secret_key --ephemeral) SECURE_SSL_REDIRECT=1 \
		SECURE_HSTS_SECONDS=31536000 SECURE_HSTS_INCLUDE_SUBDOMAINS=1 SECURE_HSTS_PRELOAD=1 \
		$(MANAGE) check --deploy --database default --fail-level WARNING
	$(MANAGE) makemigrations --check --dry-run
	$(MANAGE) spectacular --validate --fail-on-warn --file /dev/null

# The browser tests drive the system's Chromium through Playwright (it cannot download browsers
# here). Installs Debian's package when it is missing and apt-get may be used; otherwise says how.
CHROMIUM_PATH ?= /usr/bin/chromium
export CHROMIUM_PATH
browser:
	@test -x $(CHROMIUM_PATH) || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Installing Chromium for the browser tests (apt-get install chromium)"; \
			apt-get install -y -q chromium >/dev/null; \
		else \
			echo "The browser tests need Chromium at $(CHROMIUM_PATH): install it (Debian/Ubuntu:"; \
			echo "sudo apt-get install chromium) or set CHROMIUM_PATH to a Chromium or Chrome binary."; \
			exit 1; \
		fi; }

pytest: db browser
	$(BIN)/python -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS)) $(PYTEST_ARGS)

test: lint checks pytest

bench: db
	$(BIN)/python bench/run.py

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache .hypothesis
