"""The floor: a minimal trio program relaying the fast upstream's answers socket to socket.

``python -m bench.floor --port PORT --upstream-port UPSTREAM`` accepts keep-alive HTTP/1.1
connections; for each request (head up to the blank line, body by ``content-length``) it opens (or
reuses) one upstream connection for that client, forwards the request bytes unchanged, and relays
whatever the upstream sends back, as it comes, until the chunked body's last chunk (``0\\r\\n\\r\\n``).
Nothing is parsed but the request framing and the end of the answer; no HTTP server, no HTTP
client library. Its CPU per paced event is what moving the bytes through trio costs at the least:
the floor of the ``paced`` scenario. The load client talks to it as ``--kind direct``.
"""

from __future__ import annotations

import argparse
import re

import trio

CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
END = b"0\r\n\r\n"


async def _request(client: trio.SocketStream, buf: bytearray) -> bytes | None:
    """One whole request from ``client`` (``buf`` keeps what came after it), or ``None`` at EOF."""
    while (end := buf.find(b"\r\n\r\n")) < 0:
        data = await client.receive_some(65536)
        if not data:
            return None
        buf += data
    match = CONTENT_LENGTH.search(buf, 0, end + 2)
    size = end + 4 + (int(match.group(1)) if match else 0)
    while len(buf) < size:
        data = await client.receive_some(65536)
        if not data:
            return None
        buf += data
    request = bytes(buf[:size])
    del buf[:size]
    return request


async def handle(client: trio.SocketStream, upstream_port: int) -> None:
    """Relay each request of one client connection through one upstream connection."""
    upstream: trio.SocketStream | None = None
    buf = bytearray()
    try:
        while (request := await _request(client, buf)) is not None:
            if upstream is None:
                upstream = await trio.open_tcp_stream("127.0.0.1", upstream_port)
            await upstream.send_all(request)
            tail = b""
            while True:
                data = await upstream.receive_some(65536)
                if not data:
                    return
                await client.send_all(data)
                tail = (tail + data)[-len(END) :]
                if tail == END:
                    break
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    finally:
        if upstream is not None:
            await upstream.aclose()
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    args = parser.parse_args()

    async def serve() -> None:
        listeners = await trio.open_tcp_listeners(args.port, host="127.0.0.1", backlog=2048)
        await trio.serve_listeners(lambda s: handle(s, args.upstream_port), listeners)

    trio.run(serve)


if __name__ == "__main__":
    main()
