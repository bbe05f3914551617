"""What operators and auditors read: audit and warnings CSV (§4, §5), dry-run output, status.

Owns: writing files for people (Excel-safe CSV, .eml files) and reading progress back from the
ledger. Must not import: `jobs.delivery` internals that send; reports never change the ledger.
"""
