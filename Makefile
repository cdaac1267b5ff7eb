# Two commands matter: `make demo` and `make test`. Each installs what it needs into .venv
# (and the buf CLI into .tools) on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUF_VERSION := 1.75.0
BUF := .tools/node_modules/.bin/buf
DEMO_HOME := .state/demo

.PHONY: demo demo-network test lint proto bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(BUF):
	npm install --silent --no-audit --no-fund --prefix .tools @bufbuild/buf@$(BUF_VERSION)

install: $(STAMP)

## Start an embedded node (embedded Ray), run an example flow over gRPC, show its events live.
demo: $(STAMP)
	KODOSUMI_HOME=$(DEMO_HOME) $(BIN)/koco run hello -i name=kodosumi

## A registry and two nodes of one CA (subprocesses): list the network, then run a flow only
## node B offers through node A, its events relayed live; stops everything at the end.
demo-network: $(STAMP)
	$(BIN)/python tools/demo_network.py

## Install what the tests need and run them.
test: $(STAMP) $(BUF)
	$(BIN)/python -m pytest

## Regenerate kodosumi/v1 from proto/ (a test fails when the committed code drifts).
proto: $(STAMP)
	$(BIN)/python tools/gen_proto.py

lint: $(STAMP) $(BUF)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy kodosumi engine kodosumid kodoclient registryd
	$(BUF) lint

## Benchmarks (not part of the tests): each figure beside a baseline measured in the same run.
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .tools .state .pytest_cache .mypy_cache .ruff_cache
