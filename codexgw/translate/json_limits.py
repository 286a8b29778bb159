"""What a client's JSON may cost before it is parsed: nesting depth and container count (issue 16 item 4).

``json.loads`` builds every value it reads: 64 MiB of ``[],`` became 21 million lists (1.75 GB of
memory) and held the event loop for 9.8 s, and 100,000 ``[`` in a row reached Python's recursion
limit (a 500). The body size is capped before this (``--max-body-bytes``, decoded); this caps the
shape. :func:`check_json_shape` looks at the raw text with C-speed byte operations only: the string
literals are cut out (a regular expression), what remains is reduced to its brackets
(``bytes.translate``), and those are counted and their depth summed up (``itertools.accumulate``).
Each of :data:`MAX_CONTAINERS` arrays and objects costs at most ~80 bytes once parsed (an empty
list or dict with its GC header), so a body that passes costs at most ~40 MB more than its scalars,
which the size cap bounds. Real Codex bodies (long agent histories, tool schemas) have a few
thousand containers and a depth under 20.
"""

from __future__ import annotations

import re
from itertools import accumulate

__all__ = ["MAX_CONTAINERS", "MAX_DEPTH", "JSONShapeError", "check_json_shape"]

MAX_DEPTH = 128
"""Deepest nesting of arrays and objects accepted."""

MAX_CONTAINERS = 500_000
"""Most arrays and objects accepted in one document."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")


class JSONShapeError(ValueError):
    """The document is nested too deep or has too many containers; ``limit`` names which
    (``depth`` or ``containers``), and the message says the number."""

    def __init__(self, message: str, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


def check_json_shape(
    data: bytes | str, *, max_depth: int = MAX_DEPTH, max_containers: int = MAX_CONTAINERS
) -> None:
    """Refuse JSON text nested deeper than ``max_depth`` or with more than ``max_containers`` arrays
    and objects (the brackets outside string literals). Malformed text passes: the parser says so.

    Raises:
        JSONShapeError: with the limit crossed.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= min(max_depth, max_containers):
        return  # too few brackets to cross either limit: the common small body, no copy made
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    opened = brackets.count(b"[") + brackets.count(b"{")
    if opened > max_containers:
        raise JSONShapeError(
            f"the JSON body has more than {max_containers} arrays and objects ({opened})", "containers"
        )
    # each "[" / "{" is +1, each "]" / "}" is -1: the running sum's highest point is the depth
    deepest = max(accumulate(b - 1 for b in brackets.translate(_STEP)), default=0)
    if deepest > max_depth:
        raise JSONShapeError(f"the JSON body is nested deeper than {max_depth} levels", "depth")
