"""The delivery policy of SPEC §4 as pure functions over plain values (no I/O, no clock)."""
