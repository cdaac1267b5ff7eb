"""kodogate: the marketplace gateway. Kodosumi flows sold as MIP-003 agentic services over
HTTP, paid through a payment backend; a gRPC client of nodes with its own identity
(`spiffe://<domain>/gateway/<id>`), never a shortcut into their internals.

- `config.py`: the TOML configuration (services, nodes, payments); `toml_reads.py`: its reads.
- `app.py`: assembles a running gateway; `cli.py`: the `kodogate` command.
- `mip003.py`: the MIP-003 endpoints of one service; `http_errors.py`: error answers, body limit.
- `input_schema.py`: JSON Schema -> MIP-003 input fields; `input_hash.py`: MIP-004 hashes.
- `jobs.py`: the job model and its states; `job_store.py`: jobs in SQLite (compare-and-set).
- `driver.py`: drives each job (payment, launch, follow, settle); `job_fold.py`: events -> job.
- `node_link.py`: the gRPC link to a node (kodoclient); `payments/`: the payment backends.
- `signing.py`: signatures over answers; `cards.py`: signed A2A agent cards;
  `metrics.py`: Prometheus text.
"""
