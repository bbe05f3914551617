"""Resolution from the database (SPEC §4): stream the source into `resolver/`, count, explain.

Owns: driving the pure resolver over loaded accounts, the run summary, and `explain`.
Must not import: `jobs.messages`, `jobs.smtp`, `jobs.ledger`, `jobs.delivery`, `jobs.reports`.
The policy itself stays in `resolver/`; nothing here decides who receives what.
"""
