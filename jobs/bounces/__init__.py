"""Bounces that arrive after sending (SPEC §10 `bounces import`): read, parse, match, record.

Through a real relay most bounces come back minutes later as delivery status notifications to
the envelope sender. This stage reads a Maildir or mbox of them, parses each (RFC 3464 with the
`email` package, the common non-standard formats with `flufl.bounce`), matches it to a frozen
delivery by the original Message-ID or by a VERP token, and has the ledger record the result.
Modules: `reader` (mailboxes), `parse` (one message → a `Notice`, no I/O), `importer` (matching
and the report).

Owns: the meaning of a bounce message (hard or soft, which delivery, which diagnostic).
Must not import: `jobs.delivery`, `jobs.reports`, `jobs.smtp` (it never sends, and what it
learns reaches reports only through the ledger).
"""
