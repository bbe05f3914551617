"""The source database of SPEC §3: engines, the typed tables, `db import`, the streaming loader.

Owns: every read and write of the source tables, and turning their rows into `resolver` values.
Must not import: `jobs.resolution`, `jobs.messages`, `jobs.smtp`, `jobs.ledger`, `jobs.delivery`,
`jobs.reports` (the source knows nothing of campaigns being sent).
"""
