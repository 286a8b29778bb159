"""Stop sequences of a Chat Completions request, matched across streamed text deltas (sans-IO).

OpenAI's ``stop`` cuts the answer before the first match of any sequence; the backend has no such
parameter (codex-protocol.md §6.3 drops it), so codexgw cuts the text itself. A match may span
deltas: the longest suffix of the text that could start a sequence is held back until the next
delta proves or disproves it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StopMatcher"]


@dataclass
class StopMatcher:
    """Find the first stop sequence in a text that arrives in pieces.

    Attributes:
        stops: the non-empty stop sequences.
        held: text held back because it may be the start of a sequence.
    """

    stops: tuple[str, ...]
    held: str = ""

    def cut(self, text: str) -> tuple[str, bool]:
        """``(the part of held + text to send now, whether a sequence matched)``.

        On a match, the part is everything before the earliest match and nothing stays held.
        """
        s = self.held + text
        first = -1
        for stop in self.stops:
            i = s.find(stop)
            if i >= 0 and (first < 0 or i < first):
                first = i
        if first >= 0:
            self.held = ""
            return s[:first], True
        hold = 0
        for stop in self.stops:
            for k in range(min(len(stop) - 1, len(s)), hold, -1):
                if s.endswith(stop[:k]):
                    hold = k
                    break
        if hold:
            self.held = s[-hold:]
            return s[:-hold], False
        self.held = ""
        return s, False

    def take_held(self) -> str:
        """The held-back text (then none is held): the stream ended, so it was no match."""
        text, self.held = self.held, ""
        return text
