"""Resolution from the database (SPEC §4): stream the source into `resolver/`, count, explain.

Owns: driving the resolver over loaded accounts, the run summary, `explain`, and the
temporary file that holds a resolution's deliveries while it runs (`spill.py`).
Must not import: `jobs.messages`, `jobs.smtp`, `jobs.ledger`, `jobs.delivery`, `jobs.reports`.
The policy itself stays in `resolver/`; nothing here decides who receives what.
"""
