"""Alembic migrations of the ledger (a package so that an installed job ships them)."""
