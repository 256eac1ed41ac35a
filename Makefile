# Picup: `make run` to try it, `make test` to test it. Works on a fresh Debian.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= ./data
PORT   ?= 8080
HOST   ?= 127.0.0.1
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CHROMIUM := /usr/bin/chromium

.PHONY: run test install install-test chromium test-tools tus-js bench clean

run: $(VENV)/.installed ## Install into .venv and serve Picup on http://localhost:8080
	$(BIN)/picup run --host $(HOST) --port $(PORT) --data $(DATA)

test: $(VENV)/.installed-test chromium test-tools tus-js ## Install what the tests need and run every test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed-test $(VENV)/.installed-bench chromium ## Run the benchmarks (prints ratios; asserts nothing)
	$(BIN)/python bench/timeline.py
	$(BIN)/python bench/upload.py
	$(BIN)/python bench/thumbnails.py
	$(BIN)/python bench/web.py
	$(BIN)/python bench/tv.py
	$(BIN)/python bench/integrity.py
	$(BIN)/python bench/backup.py

install: $(VENV)/.installed

# Debian's python3 has no venv module until python3-venv is installed.
$(VENV)/bin/python:
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  echo "Installing python3-venv (needed to create .venv)"; \
	  $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@

$(VENV)/.installed-bench: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[bench]'
	@touch $@

# Browser tests drive Debian's Chromium (Playwright never downloads its own).
chromium:
	@[ -x $(CHROMIUM) ] || { echo "Installing Chromium for the browser tests"; \
	  $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

# tus-js-client (the library behind Uppy) for tests/test_tus_js_client.py: Node.js and npm from
# Debian when missing, then exactly the version in the lock file.
TUS_JS := tests/tus_js
tus-js: $(TUS_JS)/node_modules/.package-lock.json

$(TUS_JS)/node_modules/.package-lock.json: $(TUS_JS)/package.json $(TUS_JS)/package-lock.json
	@command -v npm >/dev/null || { echo "Installing Node.js and npm for the tus-js-client test"; \
	  $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends nodejs npm; }
	npm ci --prefix $(TUS_JS) --no-audit --no-fund --loglevel=error
	@touch $@

# The appliance test applies the playbook to a throwaway Debian root (debootstrap, nft, nginx -t,
# openssl inside it); the unit tests run systemd-analyze.
test-tools:
	@command -v debootstrap >/dev/null && [ -x /usr/bin/systemd-analyze ] && command -v systemd-nspawn >/dev/null \
	  && command -v curl >/dev/null || { \
	  echo "Installing debootstrap, systemd, systemd-container and curl for the appliance and unit tests"; \
	  $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends \
	    debootstrap systemd systemd-container curl; }

clean:
	rm -rf $(VENV) build *.egg-info app/*.egg-info .pytest_cache $(TUS_JS)/node_modules
