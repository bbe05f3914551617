"""Text from data on its way to a terminal: control and bidi characters shown, never obeyed.

Names, addresses and template output come from the source data and operator files. Printed raw,
an ESC sequence could rewrite the screen or the window title, BEL ring, a CR hide the start of a
line, and a bidi override (U+202E) reverse what the operator reads. `terminal_safe` spells each
such character as a Python-style escape (`\\x1b`, `\\u202e`), so the operator sees that it is there.

Shared by every command that prints; imports nothing from the stages.
"""

from __future__ import annotations

import unicodedata

from resolver.normalize import BIDI_CONTROLS

__all__ = ["terminal_safe"]


def _dangerous(ch: str) -> bool:
    # Cc: C0 (ESC, BEL, CR, …), DEL and C1 (U+0080–U+009F, including the 8-bit CSI U+009B)
    return ch in BIDI_CONTROLS or unicodedata.category(ch) == "Cc"


def terminal_safe(text: str, *, keep: str = "\n\t", json: bool = False) -> str:
    """`text` with every C0/C1 control (except those in `keep`) and bidi control escaped.

    `json=True`: for JSON text, escapes are spelled `\\u00XX`, so the output still parses to the
    same values (JSON itself already escapes C0 controls inside strings).
    """
    if text.isprintable():
        return text  # fast path: no Cc character and no bidi control (both are not printable)
    out = []
    for ch in text:
        if ch in keep or not _dangerous(ch):
            out.append(ch)
        elif json or ord(ch) > 0xFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\x{ord(ch):02x}")
    return "".join(out)
