"""The imperative shell around the pure policy in `resolver/`: every piece of I/O lives here.

The sub-packages follow the data, and each imports only from the stages before it:

    config  →  source  →  resolution  →  messages  →  smtp  →  ledger  →  delivery  →  reports

- `config`: settings and campaign files, validated once at the edge.
- `source`: the source database (engine, §3 tables, CSV import, streaming loader).
- `resolution`: the source rows through `resolver/` (counts, audit rows, explain).
- `messages`: templates → text → RFC 5322 bytes (render, MIME, compose, preview).
- `smtp`: the relay (a pool of persistent connections, the reply classifier, retries).
- `ledger`: the job's own tables (runs, frozen deliveries, claims, locks, suppressions).
- `delivery`: the coordinator and the sending pass that drain a frozen run.
- `reports`: what operators read (audit and warnings CSV, dry-run output, status).

`errors`, `progress`, `files` (owner-only output files, written atomically) and `terminal` (text
from data escaped for a terminal) are shared by every stage and import nothing from them.
"""
