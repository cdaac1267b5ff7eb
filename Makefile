# Two commands matter: `make demo` and `make test`. Each installs what it needs into .venv
# (the buf CLI too: the PyPI wheel buf-bin) on first use; no npm or node needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUF := $(BIN)/buf
DEMO_HOME := .state/demo

.PHONY: demo demo-network demo-gateway demo-market test lint proto bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start an embedded node (embedded Ray), run an example flow over gRPC, show its events live.
demo: $(STAMP)
	KODOSUMI_HOME=$(DEMO_HOME) $(BIN)/koco run hello -i name=kodosumi

## A registry and two nodes of one CA (subprocesses): list the network, then run a flow only
## node B offers through node A, its events relayed live; stops everything at the end.
demo-network: $(STAMP)
	$(BIN)/python tools/demo_network.py

## A flow bought over MIP-003 with curl: a node and kodogate (subprocesses), then
## availability, input_schema, start_job and status; stops both at the end (docs/gateway.md).
demo-gateway: $(STAMP)
	$(BIN)/python tools/demo_gateway.py

## The marketplace: a registry and two nodes with priced flows; an admin credits a user and
## sets a budget; the user browses, quotes, runs, verifies receipts, sees balance and usage;
## badges earned; then a flow bought over MIP-003 with curl through kodogate (docs/market.md).
demo-market: $(STAMP)
	$(BIN)/python tools/demo_market.py

## Install what the tests need and run them.
test: $(STAMP)
	$(BIN)/python -m pytest

## Regenerate kodosumi/v1 from proto/ (a test fails when the committed code drifts).
proto: $(STAMP)
	$(BIN)/python tools/gen_proto.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy kodosumi engine kodosumid kodoclient registryd gateway
	$(BUF) lint

## Benchmarks (not part of the tests): each figure beside a baseline measured in the same run.
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .tools .state .pytest_cache .mypy_cache .ruff_cache
