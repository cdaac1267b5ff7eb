"""Contracts of this node (issue 15, docs/market.md): quote -> launch -> receipt.

- `model.py`: a stored quote and a stored receipt (the signed token and the columns a
  store looks them up by), and the quote's claims read back.
- `store.py`: the `ContractStore` Protocol, held to one contract suite
  (`tests/market/test_contract_store.py`) by `memory_store.py` and `sqlite_store.py`.
- `claims.py`: the claims a quote and a receipt carry, to and from JSON.
- `stats.py`: the node's measured service of a flow (p50/p95 run time, success rate).
- `quotes.py`: the domain of quotes (`Quotes`): request one, redeem it at launch.
- `meter.py`: the cost of a quoted run as its events arrive; the ceiling it may not pass.
- `receipts.py`: the receipt of an ended run (`Receipts`), signed and stored; the
  `ReceiptSink` port told of each (the ledger posts them).
- `service.py`: `Market`, the facade the servicer and the node's wiring use.
- `servicer.py`: the thin `QuoteService` servicer and its codec.
"""
