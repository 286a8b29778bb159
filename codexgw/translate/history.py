"""``previous_response_id`` and ``item_reference``: a Responses request expanded into its whole input (sans-IO).

The Codex backend stores nothing (``store: false``, codex-protocol.md §6.3), so codexgw keeps the
responses a client did not mark ``store: false`` (:mod:`codexgw.store.responses`) and expands what
the OpenAI API lets a request point at:

* ``previous_response_id``: the stored conversation (every input and output item of the chain,
  oldest first) is prepended to the request's ``input`` (:func:`with_history`);
* ``item_reference`` items (``{"type": "item_reference", "id"}``, or a bare ``{"id"}``) in the
  client's input: each is replaced by the stored output item it names (:func:`item_references`
  says which to look up, :func:`resolve_references` replaces them).

Encrypted reasoning can only be read by the account that produced it: the expansion remembers each
item's *owner* (the account that produced it, ``None`` for input items), the follow-up prefers that
account, and on any other account the reasoning items of other accounts are left out
(:func:`body_for`), so a fallback still works.

The route looks the ids up in the store (I/O) and calls these functions with what it found.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from codexgw.errors import InvalidRequestError
from codexgw.translate.params import is_item_reference

__all__ = [
    "Conversation",
    "body_for",
    "item_references",
    "previous_not_found",
    "previous_response_id",
    "resolve_references",
    "with_history",
]

Found = Mapping[str, tuple[dict[str, Any], "int | None"]]
"""Stored output items by id: ``{id: (item, account that produced it)}`` (``ResponseStore.find_items``)."""


class Conversation(Protocol):
    """An expanded conversation (``codexgw.store.responses.History`` is one).

    Attributes:
        items: every item of the stored chain, oldest first.
        owners: per item, the account that produced it (output items) or ``None`` (input items);
            after :func:`resolve_references`, also one per item of the client's input.
        account_id: the account the follow-up prefers (the one that served the latest response).
    """

    items: list[dict[str, Any]]
    owners: list[int | None]
    account_id: int | None


def previous_response_id(body: Any) -> str | None:
    """The request's ``previous_response_id``, or ``None`` when it has none (or is no object).

    Raises:
        InvalidRequestError: it is not a non-empty string (param ``previous_response_id``).
    """
    if not isinstance(body, dict) or body.get("previous_response_id") is None:
        return None
    previous_id = body["previous_response_id"]
    if not isinstance(previous_id, str) or not previous_id:
        raise InvalidRequestError("'previous_response_id' must be a string", param="previous_response_id")
    return previous_id


def previous_not_found(previous_id: str) -> InvalidRequestError:
    """The error for an unknown, expired or ``store: false`` previous response (as OpenAI words it:
    code ``previous_response_not_found``)."""
    return InvalidRequestError(
        f"Previous response with id '{previous_id}' not found.",
        param="previous_response_id",
        code="previous_response_not_found",
    )


def with_history(body: dict[str, Any], items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``body`` without ``previous_response_id``, its ``input`` after the stored ``items``.

    A string ``input`` becomes one user message; a missing one, no items.

    Raises:
        InvalidRequestError: ``input`` is neither a string nor an array (param ``input``).
    """
    new_input = body.get("input")
    if isinstance(new_input, str):
        new_input = [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": new_input}]}
        ]
    elif new_input is None:
        new_input = []
    elif not isinstance(new_input, list):
        raise InvalidRequestError("'input' must be a string or an array", param="input")
    rest = {k: v for k, v in body.items() if k != "previous_response_id"}
    return {**rest, "input": [*items, *new_input]}


def item_references(body: Any, history: Conversation | None) -> dict[int, str]:
    """The ids to look up: ``{index in body["input"]: id}`` for each ``item_reference`` of the
    client's input (the items after ``history``'s); ``{}`` when there is none.

    Raises:
        InvalidRequestError: a reference without a non-empty string ``id`` (param ``input[i].id``,
            ``i`` the index in the client's input).
    """
    items = body.get("input") if isinstance(body, dict) else None
    offset = len(history.items) if history else 0
    if not isinstance(items, list) or not any(is_item_reference(item) for item in items[offset:]):
        return {}
    refs = {i: item.get("id") for i, item in enumerate(items) if i >= offset and is_item_reference(item)}
    for i, ref in refs.items():
        if not isinstance(ref, str) or not ref:
            raise InvalidRequestError(
                "an item reference needs a string 'id'", param=f"input[{i - offset}].id"
            )
    return refs  # type: ignore[return-value]


def resolve_references(
    body: dict[str, Any], history: Conversation | None, refs: Mapping[int, str], found: Found
) -> tuple[dict[str, Any], list[int | None], int | None]:
    """Replace each reference of ``refs`` (:func:`item_references`) by the stored item ``found`` for it.

    Returns:
        ``(the body with the items in place, the owners of every input item (the history's, then
        one per item of the client's input: the producer of a resolved item, else ``None``), the
        account the follow-up prefers: the history's, or without one the producer of the last
        resolved item)``.

    Raises:
        InvalidRequestError: a reference that no kept response holds (param ``input[i]``).
    """
    items = body["input"]
    offset = len(history.items) if history else 0
    resolved, owners = list(items), list(history.owners if history else [])
    for i in range(offset, len(items)):
        owner = None
        if i in refs:
            if refs[i] not in found:
                raise InvalidRequestError(
                    f"Item with id '{refs[i]}' not found: codexgw keeps the output items of responses "
                    "not created with store: false, until they expire.",
                    param=f"input[{i - offset}]",
                )
            item, owner = found[refs[i]]
            resolved[i] = dict(item)
        owners.append(owner)
    account_id = history.account_id if history else next((o for o in reversed(owners) if o is not None), None)
    return {**body, "input": resolved}, owners, account_id


def body_for(body: dict[str, Any], owners: Sequence[int | None]) -> Callable[[int], dict[str, Any]] | None:
    """The body for a given account: without the reasoning items produced by *other* accounts.

    ``owners`` are one for one with the first items of ``body["input"]`` (the expanded history,
    and the client's input when references were resolved). ``None`` when no item has an owner to
    care about (every account gets ``body``).
    """
    items = body["input"]
    owned = [
        (i, owner)
        for i, owner in enumerate(owners)
        if owner is not None and i < len(items) and items[i].get("type") == "reasoning"
    ]
    if not owned:
        return None

    def for_account(account_id: int) -> dict[str, Any]:
        drop = {i for i, owner in owned if owner != account_id}
        if not drop:
            return body
        return {**body, "input": [item for i, item in enumerate(items) if i not in drop]}

    return for_account
