# Moltbot gateway (Rust). `make run` and `make test` are the two commands a newcomer needs.
SHELL := /bin/bash
CARGO ?= cargo
STATE ?= $(CURDIR)/.moltbot-dev
PORT ?= 18789
BIN := target/release/moltbot

.PHONY: run build test unit ui lint bench image-check clean-dev pyvenv sdk-js

build:
	$(CARGO) build --release --locked

## Build, then run the gateway on loopback with a local state dir and a generated token.
run: build
	@mkdir -p "$(STATE)" && chmod 700 "$(STATE)"
	@[ -s "$(STATE)/token" ] || { od -An -N24 -tx1 /dev/urandom | tr -d ' \n' > "$(STATE)/token"; chmod 600 "$(STATE)/token"; }
	@echo "State dir:  $(STATE)"
	@echo "Control UI: http://127.0.0.1:$(PORT)/?token=$$(cat "$(STATE)/token")"
	@echo "Token:      cat $(STATE)/token"
	@CLAWDBOT_STATE_DIR="$(STATE)" CLAWDBOT_GATEWAY_TOKEN="$$(cat "$(STATE)/token")" \
		exec ./$(BIN) gateway --allow-unconfigured --port $(PORT) --bind loopback

## Everything CI runs: formatting, clippy, unit and integration tests, then the browser tests.
test: lint unit ui

# The official `openai` Python SDK for the /v1/chat/completions tests (tests/it/openai_sdk.rs),
# in a local virtualenv; the marker file makes later runs skip the install.
PYVENV := target/pyvenv
OPENAI_PY_VERSION := 3.51.0
PYVENV_MARKER := $(PYVENV)/.openai-$(OPENAI_PY_VERSION)

pyvenv: $(PYVENV_MARKER)

$(PYVENV_MARKER):
	@mkdir -p target
	@[ -x $(PYVENV)/bin/python ] || python3 -m venv $(PYVENV) || { rm -rf $(PYVENV); \
		echo "python3 -m venv failed: install python3-venv (Debian: apt-get install python3-venv)" >&2; exit 1; }
	$(PYVENV)/bin/pip install --disable-pip-version-check --quiet openai==$(OPENAI_PY_VERSION)
	@touch $@

# The official `openai` JS SDK, pinned by tests/sdk/package-lock.json (6.x: 7.x needs Node 22).
JS_SDK_MARKER := tests/sdk/node_modules/.package-lock.json

sdk-js: $(JS_SDK_MARKER)

$(JS_SDK_MARKER): tests/sdk/package-lock.json
	@command -v npm >/dev/null || { echo "npm not found: install Node.js and npm" >&2; exit 1; }
	cd tests/sdk && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# lib, bins and integration tests (doc tests: none; benches run only under `make bench`), then
# one closing line with the totals.
unit: pyvenv sdk-js
	@mkdir -p target
	$(CARGO) test --locked --lib --bins --tests 2>&1 | tee target/test-output.txt; status=$${PIPESTATUS[0]}; \
	awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($$(i+1) ~ /^passed;?$$/) p += $$i; if ($$(i+1) ~ /^failed;?$$/) f += $$i } } \
	     END { printf "%d passed, %d failed\n", p, f }' target/test-output.txt; exit $$status

# Control UI browser tests: Debian's chromium driven by playwright-core (pinned in
# tests/ui/package-lock.json) against target/debug/moltbot; screenshots in target/ui-screenshots/.
ui:
	@node -e 'if (+process.versions.node.split(".")[0] < 20) { console.error("ui: node >= 20 needed for playwright-core (have " + process.version + ")"); process.exit(1) }'
	$(CARGO) build --locked
	npm ci --prefix tests/ui --no-audit --no-fund --loglevel=error
	@mkdir -p target
	node --test --test-concurrency=1 tests/ui/ 2>&1 | tee target/ui-test-output.txt; status=$${PIPESTATUS[0]}; \
	awk '/^# pass / { p = $$3 } /^# fail / { f = $$3 } END { printf "ui: %d passed, %d failed\n", p, f }' target/ui-test-output.txt; exit $$status

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

## Memory, latency and size figures; appends a section to BENCHMARKS.md.
bench:
	$(CARGO) build --release --locked
	MOLTBOT_BIN=$(CURDIR)/$(BIN) $(CARGO) bench --locked --bench gateway

## Runs Dockerfile.slim's build commands on this host and checks the binary (libc, size).
image-check:
	bash .ci/image-check

clean-dev:
	rm -rf "$(STATE)"
