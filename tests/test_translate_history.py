"""``translate/history``: a request expanded with the stored conversation and the items it references."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from codexgw.errors import InvalidRequestError
from codexgw.translate.history import (
    body_for,
    item_references,
    previous_not_found,
    previous_response_id,
    resolve_references,
    with_history,
)


@dataclass
class Hist:
    items: list[dict[str, Any]] = field(default_factory=list)
    owners: list[int | None] = field(default_factory=list)
    account_id: int | None = None


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


REASONING_1 = {"type": "reasoning", "id": "rs_1", "encrypted_content": "enc-by-1"}
ANSWER_1 = {"type": "message", "role": "assistant", "id": "msg_1", "content": []}
HISTORY = Hist(items=[user("q1"), REASONING_1, ANSWER_1], owners=[None, 1, 1], account_id=1)


# -- previous_response_id --------------------------------------------------------------------------


@pytest.mark.parametrize("body", [{"input": "hi"}, {"previous_response_id": None}, "not an object", None])
def test_no_previous_response(body: Any) -> None:
    assert previous_response_id(body) is None


@pytest.mark.parametrize("bad", ["", 5, ["resp_1"]])
def test_previous_response_id_must_be_a_string(bad: Any) -> None:
    with pytest.raises(InvalidRequestError) as info:
        previous_response_id({"previous_response_id": bad})
    assert info.value.param == "previous_response_id"


def test_not_found_is_openais_error() -> None:
    error = previous_not_found("resp_gone")
    assert error.to_body()["error"] == {
        "message": "Previous response with id 'resp_gone' not found.",
        "type": "invalid_request_error",
        "param": "previous_response_id",
        "code": "previous_response_not_found",
    }
    assert error.status == 400


@pytest.mark.parametrize(
    ("given", "appended"),
    [("q2", [user("q2")]), ([user("q2")], [user("q2")]), (None, [])],
)
def test_with_history_prepends_the_stored_items(given: Any, appended: list[dict[str, Any]]) -> None:
    body = {"model": "m", "previous_response_id": "resp_1", **({"input": given} if given is not None else {})}
    assert with_history(body, HISTORY.items) == {"model": "m", "input": [*HISTORY.items, *appended]}


def test_with_history_refuses_an_input_of_another_type() -> None:
    with pytest.raises(InvalidRequestError) as info:
        with_history({"input": {"role": "user"}}, [])
    assert info.value.param == "input"


# -- item_reference --------------------------------------------------------------------------------


def test_no_references_nothing_to_look_up() -> None:
    assert item_references({"input": [user("a")]}, None) == {}
    assert item_references({"input": "text"}, None) == {}
    assert item_references("not an object", None) == {}


def test_references_after_the_history_are_looked_up_by_their_index() -> None:
    body = {"input": [*HISTORY.items, user("q2"), {"type": "item_reference", "id": "rs_9"}, {"id": "msg_9"}]}
    assert item_references(body, HISTORY) == {4: "rs_9", 5: "msg_9"}
    assert item_references({"input": [{"id": "msg_1"}]}, Hist(items=[{"id": "msg_1"}])) == {}, (
        "items of the stored history are never references"
    )


def test_a_reference_needs_a_string_id_named_by_its_index_in_the_clients_input() -> None:
    body = {"input": [*HISTORY.items, user("q2"), {"type": "item_reference", "id": 7}]}
    with pytest.raises(InvalidRequestError) as info:
        item_references(body, HISTORY)
    assert info.value.param == "input[1].id"


def test_resolved_items_replace_the_references_and_bring_their_owners() -> None:
    body = {"model": "m", "input": [user("q"), {"type": "item_reference", "id": "rs_2"}, {"id": "msg_3"}]}
    refs = item_references(body, None)
    found = {"rs_2": ({"type": "reasoning", "id": "rs_2"}, 2), "msg_3": ({"type": "message", "id": "msg_3"}, 3)}
    resolved, owners, account_id = resolve_references(body, None, refs, found)
    assert resolved == {"model": "m", "input": [user("q"), found["rs_2"][0], found["msg_3"][0]]}
    assert owners == [None, 2, 3]
    assert account_id == 3, "without a previous response: the producer of the last resolved item"
    assert resolved["input"][1] is not found["rs_2"][0], "a copy, not the stored dict"


def test_with_a_history_its_account_stays_preferred_and_its_owners_come_first() -> None:
    body = {"input": [*HISTORY.items, {"id": "rs_2"}]}
    refs = item_references(body, HISTORY)
    _resolved, owners, account_id = resolve_references(body, HISTORY, refs, {"rs_2": ({"type": "reasoning"}, 2)})
    assert owners == [None, 1, 1, 2] and account_id == 1


def test_an_unknown_reference_is_an_error_naming_it() -> None:
    body = {"input": [user("q"), {"id": "msg_gone"}]}
    with pytest.raises(InvalidRequestError, match="msg_gone") as info:
        resolve_references(body, None, item_references(body, None), {})
    assert info.value.param == "input[1]"


# -- body_for --------------------------------------------------------------------------------------


def test_body_for_drops_reasoning_of_other_accounts_only() -> None:
    body = {"input": [*HISTORY.items, user("q2")]}
    for_account = body_for(body, HISTORY.owners)
    assert for_account is not None
    assert for_account(1) is body, "the producing account gets the body unchanged"
    assert for_account(2) == {"input": [user("q1"), ANSWER_1, user("q2")]}


def test_body_for_is_none_without_owned_reasoning() -> None:
    assert body_for({"input": [user("q1"), ANSWER_1]}, [None, 1]) is None
    assert body_for({"input": [user("q1")]}, []) is None
