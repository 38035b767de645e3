"""Step: tables. The one renderer of every table people read: terminal text, Markdown, CSV and HTML.

compare, gate, leaderboard, identify and the HVAE table build a :class:`Table` and call
:func:`render`; none of them aligns columns, escapes or formats numbers itself.

**Numbers, one format everywhere** (:func:`fmt_number`): four decimals (``0.0010``,
``0.1234``, ``1.0300``), a non-zero value that would print as zero in scientific notation with one
digit (``3e-05``, ``-3e-05``), NaN as ``n/a`` and a missing value as ``-``. ``<`` is never part of a
number: reports use it for one thing, an upper bound (``<0.0340``). p-values and
distances use it in every command. A ratio reads as a ratio: :func:`fmt_ratio` gives
``1.80×``.

**Hostile names are inert** (a model, task or file name comes from the user's files):

* terminal text: control and escape characters (ESC, CR, NUL, C1 controls, bidi overrides)
  are shown as ``\\x1b``-style escapes, so a name cannot move the cursor or recolour the terminal;
* Markdown: ``\\``, ``|``, ``[``, ``]`` and backticks are escaped, ``<`` where it could open an HTML tag or an
  autolink (before a letter, ``/``, ``!`` or ``?``; ``<0.0340`` stays readable in a terminal), ``://`` and ``www.``
  are broken with an entity and a newline becomes ``<br>``, so a name cannot break the table, inject HTML or
  render as a link or an image;
* CSV: a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab, CR or LF (after leading spaces too: a
  spreadsheet formula) gets a leading ``'``; numbers are never touched (a negative score stays a number);
* HTML: every text is HTML-escaped;
* XML (JUnit): :func:`xml_text` replaces the characters XML 1.0 cannot hold.
"""

from __future__ import annotations

import csv
import html
import io
import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Sequence

from univar_eval.safe_text import escape_char, terminal_text, unsafe

__all__ = ["terminal_text"]  # re-exported: the reports' one place for terminal text

FORMATS = ("text", "md", "csv", "html")
DIGITS = 4

Cell = object  # str, int, float, None


# -- numbers -------------------------------------------------------------------------------------------------
def fmt_number(x, digits: int = DIGITS) -> str:
    """The one number format: ``digits`` decimals; tiny non-zero values as ``3e-05``; NaN ``n/a``; None ``-``."""
    if x is None:
        return "-"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int) or getattr(getattr(x, "dtype", None), "kind", "") in ("i", "u"):
        return str(int(x))
    if not isinstance(x, float):
        try:
            x = float(x)  # numpy scalars
        except (TypeError, ValueError):
            return str(x)
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    smallest = 10.0**-digits
    if x != 0 and abs(x) < smallest / 2:
        return f"{x:.0e}"  # never "0.0000" for a non-zero value, and no "<", which means an upper bound
    return f"{x:.{digits}f}"


def fmt_ratio(x, digits: int = 2) -> str:
    """A ratio as people read one: ``1.80×``; ``-`` when there is none."""
    if x is None or not isinstance(x, (int, float)) or not math.isfinite(x):
        return "-"
    return f"{x:.{digits}f}×"


def fmt_percent(x, digits: int = 2) -> str:
    """A share as a percentage: ``18.68%``."""
    if x is None or not isinstance(x, (int, float)) or math.isnan(x):
        return fmt_number(x)
    return f"{100 * x:.{digits}f}%"


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 model``, ``2 models``."""
    return f"{n} {noun if n == 1 else (nouns or noun + 's')}"


# -- safe text ------------------------------------------------------------------------------------------------
def _escape_char(ch: str) -> str:
    return escape_char(ch)


_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def markdown_text(text: str) -> str:
    """``text`` safe inside a Markdown table cell: ``\\`` and ``|`` escaped, ``<`` where it could open an HTML
    tag or autolink (before a letter, ``/``, ``!`` or ``?``), newlines as ``<br>``; link and image syntax (``[``,
    ``]``), code spans (backticks) and bare URLs (``://``, ``www.``) escaped, so a name cannot render as a link,
    an image or a clickable URL."""
    text = str(text).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\\", "\\\\").replace("|", "\\|")
    text = _TAG_START.sub("&lt;", text)
    text = text.replace("[", "\\[").replace("]", "\\]").replace("`", "\\`")
    text = text.replace("://", "&#58;//").replace("www.", "www&#46;")
    text = text.replace("\n", "<br>")
    return "".join(_escape_char(ch) if unsafe(ch) else ch for ch in text)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_text(text: str) -> str:
    """A text cell that a spreadsheet would run as a formula gets a leading ``'``; numbers stay as they are."""
    text = str(text)
    if (text.startswith(_FORMULA_START) or text.lstrip().startswith(_FORMULA_START)) and not _is_number_text(text):
        return "'" + text
    return text


def _xml_ok(ch: str) -> bool:
    code = ord(ch)
    return (
        code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF
    ) and not 0x7F <= code <= 0x9F


def xml_text(text) -> str:
    """``text`` with every character XML 1.0 cannot hold (and C1 controls) shown as an escape (``\\x1b``)."""
    return "".join(ch if _xml_ok(ch) else _escape_char(ch) for ch in str(text))


_NUMBER = re.compile(r"^[<>]?[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?[%×°]?$")


def _is_number_text(text: str) -> bool:
    return bool(_NUMBER.match(text.strip()))


# -- the table ------------------------------------------------------------------------------------------------
@dataclass
class Table:
    """Rows of cells under ``headers``. A cell is text, a number (formatted by :func:`fmt_number`, or by
    ``formats[column]``) or None (``-``; empty in CSV). ``title`` goes above the table, ``notes`` below it."""

    headers: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    title: str | None = None
    notes: Sequence[str] = field(default_factory=list)
    formats: dict[int, Callable[[object], str]] = field(default_factory=dict)

    def text_of(self, col: int, cell: Cell) -> str:
        if col in self.formats:
            return self.formats[col](cell)
        if cell is None or isinstance(cell, (int, float)) or _is_numpy_number(cell):
            return fmt_number(cell)
        return str(cell)

    def numeric_column(self, col: int) -> bool:
        values = [r[col] for r in self.rows if r[col] is not None]
        return bool(values) and all(
            isinstance(v, (int, float))
            or _is_numpy_number(v)
            or _is_number_text(self.text_of(col, v))
            or self.text_of(col, v) in ("-", "n/a")
            for v in values
        )


def _is_numpy_number(x) -> bool:
    return type(x).__module__ == "numpy" and hasattr(x, "item")


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 0 if unicodedata.combining(ch) else 1 for ch in text)


def _pad(text: str, width: int, right: bool) -> str:
    space = " " * max(0, width - _width(text))
    return space + text if right else text + space


def to_text(table: Table) -> str:
    """Aligned columns for a terminal: numbers right, text left; no trailing spaces."""
    cells = [[terminal_text(table.text_of(i, c)) for i, c in enumerate(r)] for r in table.rows]
    headers = [terminal_text(h) for h in table.headers]
    widths = [max([_width(h)] + [_width(r[i]) for r in cells]) for i, h in enumerate(headers)]
    right = [table.numeric_column(i) for i in range(len(headers))]
    lines = [terminal_text(table.title)] if table.title else []
    for row in [headers, *cells]:
        lines.append("  ".join(_pad(c, w, r) for c, w, r in zip(row, widths, right)).rstrip())
    lines += [terminal_text(n) for n in table.notes]
    return "\n".join(lines)


def to_markdown(table: Table) -> str:
    """A GitHub-flavoured Markdown table; the title above and each note below after a blank line."""
    right = [table.numeric_column(i) for i in range(len(table.headers))]
    lines = [f"_{markdown_text(table.title)}_", ""] if table.title else []
    lines.append("| " + " | ".join(markdown_text(h) for h in table.headers) + " |")
    lines.append("|" + "|".join("---:" if r else "---" for r in right) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(markdown_text(table.text_of(i, c)) for i, c in enumerate(row)) + " |")
    for note in table.notes:
        lines += ["", markdown_text(note)]
    return "\n".join(lines) + "\n"


def _csv_cell(table: Table, col: int, cell: Cell) -> str:
    if cell is None:
        return ""
    if getattr(getattr(cell, "dtype", None), "kind", "") in ("i", "u"):
        return str(int(cell))
    if isinstance(cell, float) or _is_numpy_number(cell):
        value = float(cell)
        return "" if math.isnan(value) else repr(value)
    if isinstance(cell, int) and not isinstance(cell, bool):
        return str(cell)
    return csv_text(table.text_of(col, cell))


def to_csv(table: Table) -> str:
    """CSV with full-precision numbers (empty when missing) and formula-safe text; the title as a ``#`` row."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if table.title:
        w.writerow([f"# {table.title}"])
    w.writerow([csv_text(h) for h in table.headers])
    for row in table.rows:
        w.writerow([_csv_cell(table, i, c) for i, c in enumerate(row)])
    return buf.getvalue()


_SORT_JS = """
document.querySelectorAll('th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0];
    var asc = th.dataset.order !== 'asc'; th.dataset.order = asc ? 'asc' : 'desc';
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : (x || '').localeCompare(y || '');
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""

_STYLE = (
    "body{font-family:sans-serif}table{border-collapse:collapse}th,td{border:1px solid #ccc;"
    "padding:4px 8px;text-align:right}th{cursor:pointer;background:#f4f4f4}td:first-child{text-align:left}"
)


def to_html(table: Table, page_title: str | None = None) -> str:
    """An HTML table (a whole sortable page with ``page_title``); each cell's sort key in ``data-v``."""
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in table.headers)
    body = []
    for row in table.rows:
        tds = []
        for i, c in enumerate(row):
            shown = table.text_of(i, c)
            key = _csv_cell(table, i, c) if isinstance(c, (int, float)) or _is_numpy_number(c) else shown
            tds.append(f'<td data-v="{esc(key)}">{esc(shown)}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    html_table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    parts = ([f"<p>{esc(table.title)}</p>"] if table.title else []) + [html_table]
    parts += [f"<p>{esc(n)}</p>" for n in table.notes]
    if page_title is None:
        return "\n".join(parts) + "\n"
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>' + esc(page_title) + "</title>"
        f"<style>{_STYLE}</style></head><body><h1>{esc(page_title)}</h1>"
        + "".join(parts)
        + f"<script>{_SORT_JS}</script></body></html>\n"
    )


RENDERERS: dict[str, Callable[[Table], str]] = {"text": to_text, "md": to_markdown, "csv": to_csv, "html": to_html}


def render(table: Table, fmt: str = "text") -> str:
    """``table`` as ``text``, ``md``, ``csv`` or ``html``."""
    try:
        return RENDERERS[fmt](table)
    except KeyError:
        raise ValueError(f"unknown table format {fmt!r}; use one of {', '.join(FORMATS)}") from None
