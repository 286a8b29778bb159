"""The httpx error boundary (``client/errors.py``): how httpx's errors are mapped, and that no code
above ``client/`` handles httpx's exceptions itself (issue 11: library errors mapped at one boundary)."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
import pytest
import trio

import codexgw
from codexgw.client.calls import next_chunk, request
from codexgw.client.errors import OAUTH_SERVER, mapped, transport_error
from codexgw.errors import UpstreamConnectionError

ROOT = Path(codexgw.__file__).parent


@pytest.mark.parametrize(
    ("exc", "text", "connect_failed"),
    [
        (httpx.ConnectError("refused"), "the OAuth server could not be reached (ConnectError)", True),
        (httpx.ConnectTimeout("slow"), "the OAuth server timed out (ConnectTimeout)", True),
        (httpx.ReadTimeout("slow"), "the OAuth server timed out (ReadTimeout)", False),
        (
            httpx.RemoteProtocolError("cut"),
            "the OAuth server could not be reached (RemoteProtocolError)",
            False,
        ),
    ],
)
def test_transport_error_names_the_peer_and_the_failure(
    exc: httpx.HTTPError, text: str, connect_failed: bool
) -> None:
    error = transport_error(exc, peer=OAUTH_SERVER)
    assert (error.message, error.connect_failed, error.cause) == (text, connect_failed, type(exc).__name__)
    assert error.status == 502 and error.code == "upstream_unavailable"


def test_mapped_turns_httpx_errors_into_codexgw_errors_and_lets_others_pass() -> None:
    with pytest.raises(UpstreamConnectionError, match="the Codex backend timed out"), mapped():
        raise httpx.PoolTimeout("full")
    with pytest.raises(KeyError), mapped():
        raise KeyError("not ours to map")


async def test_request_and_next_chunk_map_transport_failures() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        with pytest.raises(UpstreamConnectionError) as caught:
            await request(http, "GET", "http://127.0.0.1:9/x", peer="the usage endpoint")
    assert caught.value.message == "the usage endpoint could not be reached (ConnectError)"

    async def chunks():  # type: ignore[no-untyped-def]
        yield b"data: 1\n\n"
        raise httpx.ReadError("reset")

    iterator = chunks().__aiter__()
    assert await next_chunk(iterator) == b"data: 1\n\n"
    with pytest.raises(UpstreamConnectionError, match=r"could not be reached \(ReadError\)"):
        await next_chunk(iterator)

    async def empty():  # type: ignore[no-untyped-def]
        await trio.lowlevel.checkpoint()
        return
        yield b""

    assert await next_chunk(empty().__aiter__()) is None


def _httpx_exception_handlers(tree: ast.AST) -> list[int]:
    """Lines of ``except`` clauses that name an ``httpx.<Something>`` exception."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            for name in ast.walk(node.type):
                if (
                    isinstance(name, ast.Attribute)
                    and isinstance(name.value, ast.Name)
                    and name.value.id == "httpx"
                ):
                    lines.append(node.lineno)
    return lines


def test_only_client_handles_httpx_exceptions() -> None:
    offenders = [
        f"{path.relative_to(ROOT.parent)}:{line}"
        for path in sorted(ROOT.rglob("*.py"))
        if "client" not in path.relative_to(ROOT).parts[:1]
        for line in _httpx_exception_handlers(ast.parse(path.read_text()))
    ]
    assert offenders == [], (
        "httpx errors are mapped in codexgw/client/ only; use client.calls or client.errors"
    )


def test_the_handler_scan_finds_a_planted_handler() -> None:
    tree = ast.parse("try:\n    pass\nexcept (httpx.ConnectError, OSError):\n    pass\n")
    assert _httpx_exception_handlers(tree) == [3]
