"""The imperative shell: loading, rendering, the ledger, sending and audit export."""
