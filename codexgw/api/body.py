"""Reading a client's request body: size limit, ``Content-Encoding``, JSON (the thin edge of ``api/``).

The budget of one body (issue 16 item 4): at most ``max_body_bytes`` as received and again once
decoded (``--max-body-bytes``), a JSON shape within :mod:`codexgw.translate.json_limits` (depth,
container count), checked before parsing; a body over :data:`OFF_THREAD_BYTES` (as received, or
any compressed one) is decoded and parsed in a worker thread, so the event loop keeps serving
streams meanwhile.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import trio
from quart import request
from werkzeug.exceptions import RequestEntityTooLarge

from codexgw.errors import InvalidRequestError, PayloadTooLargeError, UnsupportedMediaTypeError
from codexgw.translate.json_limits import JSONShapeError, check_json_shape

OFF_THREAD_BYTES = 256 * 1024
"""Bodies larger than this (bytes, as received) are parsed in a worker thread (~1 ms of parsing)."""


def decode_content(raw: bytes, encoding: str, *, max_bytes: int) -> bytes:
    """Undo a request ``Content-Encoding`` (``gzip``, ``deflate``, ``zstd``, ``identity``).

    Args:
        raw: the body as received.
        encoding: the ``Content-Encoding`` header value ('' for none).
        max_bytes: largest decoded size accepted.

    Raises:
        PayloadTooLargeError: the decoded body exceeds ``max_bytes``.
        UnsupportedMediaTypeError: an unknown encoding, or ``zstd`` without the ``zstandard`` package.
        InvalidRequestError: the body is not valid data in that encoding.
    """
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding in ("gzip", "x-gzip", "deflate"):
        wbits = 16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS
        decoder = zlib.decompressobj(wbits)
        try:
            out = decoder.decompress(raw, max_bytes + 1)
        except zlib.error:
            if encoding != "deflate":
                raise InvalidRequestError(f"the request body is not valid {encoding} data") from None
            try:  # some clients send raw deflate without the zlib header
                out = zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw, max_bytes + 1)
            except zlib.error:
                raise InvalidRequestError("the request body is not valid deflate data") from None
    elif encoding == "zstd":
        try:
            import zstandard
        except ImportError:
            raise UnsupportedMediaTypeError(
                "Content-Encoding: zstd needs the optional 'zstandard' package: pip install zstandard "
                "(or send the body uncompressed)"
            ) from None
        try:
            reader = zstandard.ZstdDecompressor().stream_reader(raw)
            out = reader.read(max_bytes + 1)
        except zstandard.ZstdError:
            raise InvalidRequestError("the request body is not valid zstd data") from None
    else:
        raise UnsupportedMediaTypeError(f"unsupported Content-Encoding: {encoding}")
    if len(out) > max_bytes:
        raise PayloadTooLargeError(f"the decoded request body exceeds {max_bytes} bytes")
    return out


def parse_json_body(raw: bytes, content_encoding: str, *, max_bytes: int) -> Any:
    """Decode (``Content-Encoding``) and parse a request body as JSON.

    Returns:
        The parsed JSON value (any type; the translator checks it is an object).

    Raises:
        PayloadTooLargeError, UnsupportedMediaTypeError, InvalidRequestError: see
        :func:`decode_content`; an empty or malformed body, or one past a shape limit
        (:func:`~codexgw.translate.json_limits.check_json_shape`), is a 400 naming no param.
    """
    data = decode_content(raw, content_encoding, max_bytes=max_bytes)
    if not data.strip():
        raise InvalidRequestError("the request body is empty; expected a JSON object")
    return parse_json_text(data, what="the request body")


def parse_json_text(data: bytes | str, *, what: str) -> Any:
    """Parse JSON within the shape limits.

    Raises:
        InvalidRequestError: 400 (param null) naming ``what`` and the limit or the syntax error;
            code ``json_too_deep`` / ``json_too_large`` for a limit.
    """
    try:
        check_json_shape(data)
        return json.loads(data)
    except JSONShapeError as exc:
        code = "json_too_deep" if exc.limit == "depth" else "json_too_large"
        raise InvalidRequestError(f"{what}: {exc}", code=code) from None
    except RecursionError:  # a shape the check let through still cannot reach a 500
        raise InvalidRequestError(f"{what} is nested too deep", code="json_too_deep") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"{what} is not valid JSON: {exc}") from None


async def parse_json_body_async(raw: bytes, content_encoding: str, *, max_bytes: int) -> Any:
    """:func:`parse_json_body`, in a worker thread when ``raw`` is over :data:`OFF_THREAD_BYTES` or
    compressed (what it decodes to is unknown until decoded)."""
    if len(raw) <= OFF_THREAD_BYTES and content_encoding.strip().lower() in ("", "identity"):
        return parse_json_body(raw, content_encoding, max_bytes=max_bytes)
    return await trio.to_thread.run_sync(lambda: parse_json_body(raw, content_encoding, max_bytes=max_bytes))


async def read_json_body(max_bytes: int) -> Any:
    """Read and parse the current Quart request's JSON body (:func:`parse_json_body`).

    Raises:
        PayloadTooLargeError: the raw body exceeds ``max_bytes``; else as :func:`parse_json_body`.
    """
    try:
        raw = await request.get_data(cache=False, as_text=False)
    except RequestEntityTooLarge:
        raise PayloadTooLargeError(f"the request body exceeds {max_bytes} bytes") from None
    assert isinstance(raw, bytes)
    return await parse_json_body_async(raw, request.headers.get("content-encoding", ""), max_bytes=max_bytes)
