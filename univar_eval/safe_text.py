"""Text from files we did not write (model, task and file names, answers), made inert for a terminal.

The lowest layer, so that every channel can use it: the stderr ``read ...`` lines of :mod:`univar_eval.runs`,
``bank list`` and the tables of :mod:`univar_eval.reports.table` (which adds the Markdown, CSV, HTML and XML
rules). A name cannot move the cursor, recolour the terminal, set a hyperlink (OSC 8) or reverse the
direction of what follows (bidi overrides): each such character is shown as an escape (``\\x1b``, ``\\u202e``).
"""

from __future__ import annotations

import unicodedata

#: Bidirectional embedding, override and isolate controls, the marks, and the line/paragraph separators.
BIDI_AND_SEPARATORS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c\u2028\u2029")


def escape_char(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def unsafe(ch: str) -> bool:
    """A control character (C0, DEL, C1: ESC starts ANSI and OSC sequences), a bidi control or a line separator."""
    return unicodedata.category(ch) == "Cc" or ch in BIDI_AND_SEPARATORS


def terminal_text(text, *, lines: bool = False) -> str:
    """``text`` with control, escape and bidi characters shown as escapes (``\\x1b``); the rest as it is.
    ``lines``: newlines are kept (text of several lines that we laid out, e.g. indented JSON)."""
    if lines:
        return "\n".join(terminal_text(part) for part in str(text).split("\n"))
    return "".join(escape_char(ch) if unsafe(ch) else ch for ch in str(text))
