"""Payment backends: how a job's money is requested, confirmed locked, settled and released.

- `backend.py`: the `PaymentBackend` Protocol and the errors every backend raises.
- `free.py`: services without a price (nothing to pay; funds count as locked at once).
- `masumi.py`: the Masumi payment service's HTTP API (`/api/v1/payment/...`).
- `ledger.py`: the local ledger of the registry (the default).
- `choose.py`: which backend serves which service.
"""
