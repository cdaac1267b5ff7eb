"""The registry's ledger: budgets and settlement (docs/market.md, "Budgets and settlement").

A double-entry ledger in the registry's database, the default backend of the settlement
interface (`kodosumi/settlement.py`). Rooms: `model` (budgets and periods), `store` with
`memory_store` and `sqlite_store` (+ `sqlite_rows`, its tables) (state; one contract suite,
`tests/ledger/`), `ledger` (the domain: grants, holds, settlements, budgets), `policy` (who may
call what), `codec` and `servicer` (the thin gRPC layer of `LedgerService`), `runtime` (the
ledger inside a registry process) and `crashpoints` (for the crash tests).
"""
