"""The JSON shape limits (codexgw/translate/json_limits.py): depth and container count, strings ignored."""

from __future__ import annotations

import json

import pytest

from codexgw.api.body import parse_json_body
from codexgw.errors import InvalidRequestError
from codexgw.translate.json_limits import JSONShapeError, check_json_shape


def test_depth_at_the_limit_passes_one_more_is_refused() -> None:
    check_json_shape("[" * 128 + "]" * 128)
    with pytest.raises(JSONShapeError) as info:
        check_json_shape("[" * 129 + "]" * 129)
    assert info.value.limit == "depth" and "128" in str(info.value)
    check_json_shape('{"a":' * 128 + "1" + "}" * 128)


def test_container_count_at_the_limit_passes_one_more_is_refused() -> None:
    check_json_shape("[" + "[]," * 9 + "[]]", max_containers=11)
    with pytest.raises(JSONShapeError) as info:
        check_json_shape("[" + "[]," * 10 + "[]]", max_containers=11)
    assert info.value.limit == "containers"


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"text": "[" * 10_000 + '\\"{' * 1000, "list": [1, 2]})
    check_json_shape(text, max_containers=3, max_depth=2)
    check_json_shape(text.encode(), max_containers=3, max_depth=2)


def test_a_real_codex_shaped_body_passes() -> None:
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi [x] {y}"}]}
    body = {"model": "gpt-5.5", "input": [item] * 20_000, "tools": [{"type": "function", "parameters": {}}]}
    check_json_shape(json.dumps(body))


@pytest.mark.parametrize(
    ("raw", "code"),
    [(b"[" * 5000 + b"]" * 5000, "json_too_deep"), (b"[" + b"[]," * 600_000 + b"[]]", "json_too_large")],
)
def test_the_body_parser_answers_400_naming_the_limit(raw: bytes, code: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_json_body(raw, "", max_bytes=64 * 1024 * 1024)
    assert info.value.status == 400 and info.value.code == code and info.value.param is None


def test_malformed_text_is_left_to_the_parser() -> None:
    check_json_shape(b"[[[" * 10)
    with pytest.raises(InvalidRequestError) as info:
        parse_json_body(b'{"a": "unterminated', "", max_bytes=1000)
    assert "not valid JSON" in info.value.message
