"""Tables that fit the terminal: the columns that matter are never cut, long text is shortened.

``status`` and ``accounts list`` lay their rows out with :func:`fit_table`: every column has its
natural width (its widest cell) unless the row is wider than the console. Then the columns marked
``shrink`` give up width, last column first, down to their ``min_width`` (their cells end in
``…``); if that is not enough, the ``optional`` columns are left out, last first. Columns with
neither mark (a state, a cooldown) always keep their full width. ``--wide`` skips all that.

:func:`console` is the rich console the commands print with: the terminal's width, ``$COLUMNS`` when
set, else (output to a file or pipe) :data:`PIPE_WIDTH`. Rich loads only when a table is drawn.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["PIPE_WIDTH", "Col", "console", "fit_table", "fit_widths", "natural_widths", "table_width"]

PIPE_WIDTH = 160
"""Line width when the output is no terminal and ``$COLUMNS`` is not set, columns."""

GAP = 2
"""Spaces between two columns (rich's padding of one on each side, none at the edges)."""


@dataclass(frozen=True)
class Col:
    """A column of :func:`fit_table`.

    Attributes:
        header: the header text.
        shrink: may be shortened (cells cut with ``…``) down to ``min_width`` columns.
        min_width: the narrowest a shrinking column gets.
        optional: may be left out when the table cannot fit otherwise.
    """

    header: str
    shrink: bool = False
    min_width: int = 8
    optional: bool = False


def console(*, wide: bool = False) -> Any:
    """The rich ``Console`` to print with (see the module docstring); ``wide`` keeps long lines."""
    from rich.console import Console

    out = Console(highlight=False)
    if not out.is_terminal and not os.environ.get("COLUMNS"):
        out = Console(highlight=False, width=max(out.width, PIPE_WIDTH))
    if wide:
        out.soft_wrap = True
    return out


def _cell_len(cell: Any) -> int:
    from rich.cells import cell_len
    from rich.text import Text

    text = cell if isinstance(cell, Text) else Text.from_markup(str(cell))
    return max((cell_len(line) for line in text.plain.splitlines()), default=0)


def natural_widths(columns: Sequence[Col], rows: Sequence[Sequence[Any]]) -> list[int]:
    """Each column's widest cell (header included), in terminal cells."""
    return [max([len(c.header)] + [_cell_len(r[i]) for r in rows]) for i, c in enumerate(columns)]


def _total(widths: Sequence[int | None]) -> int:
    shown = [w for w in widths if w is not None]
    return sum(shown) + GAP * max(0, len(shown) - 1)


def fit_widths(columns: Sequence[Col], rows: Sequence[Sequence[Any]], width: int) -> list[int | None]:
    """Each column's width (``None``: left out) so that the rows fit in ``width`` columns, as the
    module docstring says: shrink first; if that is not enough, leave out the last optional column
    and start again from the natural widths. Pure: cells are str (rich markup) or rich ``Text``."""
    natural = natural_widths(columns, rows)
    dropped: set[int] = set()
    optional = [i for i in reversed(range(len(columns))) if columns[i].optional]
    while True:
        widths: list[int | None] = [None if i in dropped else w for i, w in enumerate(natural)]
        for i in reversed(range(len(columns))):
            w = widths[i]
            excess = _total(widths) - width
            if excess <= 0:
                return widths
            if columns[i].shrink and w is not None and w > columns[i].min_width:
                widths[i] = max(columns[i].min_width, w - excess)
        if _total(widths) <= width or not optional:
            return widths
        dropped.add(optional.pop(0))


def fit_table(
    columns: Sequence[Col], rows: Sequence[Sequence[Any]], width: int, *, wide: bool = False
) -> Any:
    """A rich ``Table`` of ``rows`` laid out by :func:`fit_widths` (``wide``: every column at its
    natural width, nothing cut or left out; print it with ``width=table_width(...)``)."""
    from rich.table import Table

    widths: list[int | None] = (
        list(natural_widths(columns, rows)) if wide else fit_widths(columns, rows, width)
    )
    table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
    keep = [i for i, w in enumerate(widths) if w is not None]
    for i in keep:
        table.add_column(columns[i].header, width=widths[i], no_wrap=True, overflow="ellipsis")
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    return table


def table_width(columns: Sequence[Col], rows: Sequence[Sequence[Any]]) -> int:
    """The width of the table at its natural column widths (for printing ``--wide``)."""
    return _total(natural_widths(columns, rows))
