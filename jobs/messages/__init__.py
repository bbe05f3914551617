"""Messages (SPEC §6): a delivery → template context → text → RFC 5322 bytes; `preview`.

Owns: the Jinja2 sandbox, MIME building, deterministic Message-IDs, header sanitizing.
Must not import: `jobs.smtp`, `jobs.ledger`, `jobs.delivery`, `jobs.reports`. Rendering never
queries the database for more data (`preview` only asks `jobs.resolution` for the delivery).
"""
