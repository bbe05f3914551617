"""Delivery (SPEC §7): the `run` coordinator and the sending pass that drains a frozen run.

Owns: the order of a run (lock, freeze once, send, report) and the claim → compose → send →
record pipeline. Must not import: `jobs.reports`. It never re-resolves a frozen run and never
reads the source tables after the freeze.
"""
