"""Reading a streamed HTTP/1.1 response body straight off its socket, in the stream's own task.

httpx/httpcore read a streamed body one ``receive_some`` at a time, each inside a ``fail_after``
cancel scope, each successful receive followed by a scheduler round; a wait with a timeout around
that read is not safe either (httpcore closes a response whose read is cancelled), which is why the
relay had a pump task per stream. With paced events (a model's tokens tens of ms apart) that
machinery was most of the CPU per relayed event (issue 17).

:class:`DirectBody` takes over once httpcore returned the response head: it receives from the
connection's socket until it would block (no scheduler round when data is there), feeds the bytes
to the connection's own ``h11.Connection`` (the chunked decoding, and the state httpcore checks
when the response closes), and waits for the socket to become readable with a deadline the caller
chooses (cancel-safe: nothing is lost when that wait is cancelled). Because httpcore's h11 state
sees every byte, closing the response after the body's end returns the connection to the pool as
if httpcore had read it, and closing it earlier closes the connection.

The chunked framing itself is decoded here once h11 stands between two chunks (h11's
``ChunkedReader`` at a chunk boundary, nothing left in its buffer): per event that is one regex
match and a slice instead of three ``next_event`` calls. At the last chunk (size 0) the rest of the
bytes goes back to h11, from the boundary it was left at, so h11 itself reads the end of the
message and reaches the state httpcore checks; closing earlier leaves h11 mid-body, and the
connection is closed.

It relies on httpcore 1.0's object layout (``PoolByteStream._stream`` →
``HTTP11ConnectionByteStream._connection._h11_state``, the trio backend's ``TrioStream._stream``);
:meth:`DirectBody.attach` checks every step and returns ``None`` when anything differs (another
httpcore, HTTP/2, a proxy), and the caller keeps httpx's path; over TLS (the real backend) the
plaintext comes from :class:`codexgw.client.direct_tls.TlsReceiver` (trio's ``SSLStream`` objects,
read without its awaits) instead of ``socket.recv``; and on h11 0.16's
``ChunkedReader`` state (``_bytes_in_chunk``, ``_bytes_to_discard``, ``_reading_trailer``): when
that differs, h11 decodes the whole body as before.
"""

from __future__ import annotations

import math
import re
import socket
from collections.abc import Callable

import h11
import httpx
import trio

from codexgw.client.direct_tls import TlsReceiver
from codexgw.client.errors import BACKEND, transport_error
from codexgw.errors import UpstreamConnectionError

__all__ = ["DirectBody", "read_timed_out"]

_CHUNK_HEAD = re.compile(rb"([0-9A-Fa-f]{1,20})[ \t]*(?:;[^\r\n]*)?\r\n")
"""A chunk-size line (RFC 9112 §7.1; extensions ignored), as h11's ``chunk_header_re`` accepts."""
_MAX_HEAD = 1024
"""Longest chunk-size line accepted (bytes; h11 caps a line near 64 KiB, a real one is ~10)."""

READ_BYTES = 65536
"""Bytes per ``recv`` (httpcore reads 64 KiB too)."""
MAX_READY = 1 << 20
"""At most this many bytes taken per :meth:`DirectBody.read_ready` call (then the caller writes them)."""


class DirectBody:
    """The rest of one response body, read from its socket in the caller's task (see the module doc).

    Attributes:
        done: the body ended (the whole message was received); :meth:`read_ready` returns ``b""``.
    """

    def __init__(
        self, h11_state: h11.Connection, trio_socket: trio.socket.SocketType, recv: Callable[[int], bytes]
    ) -> None:
        """``recv`` is the connection's ``socket.recv`` (plain TCP) or a :class:`TlsReceiver`."""
        self._h11 = h11_state
        self._trio_socket = trio_socket
        self._recv = recv
        self.done = False
        self._own: bool = False
        """Decoding the chunks here (between h11's handing over and the last chunk)."""
        self._buf = bytearray()
        self._in_chunk = 0  # payload bytes of the current chunk still to come
        self._discard = b""  # bytes of a chunk's closing CRLF still to come
        self._handed = b""  # what h11 still expected to discard when it handed over
        self._tried = False  # the first read_ready tried the take-over with h11's buffered bytes
        self._dry = False
        """The last ``recv`` took less than asked: the socket had no more, so :meth:`read_ready`
        does not ask it again (a failing ``recv`` and its ``BlockingIOError`` per event) until a
        wait saw it readable."""

    @classmethod
    def attach(cls, response: httpx.Response) -> DirectBody | None:
        """A reader for ``response``'s body, or ``None`` when it is not an HTTP/1.1 body (over TCP or TLS)
        of httpcore 1.0's pool behind :class:`codexgw.client.transport.ShardedTransport` (or the
        body was already read from)."""
        stream = getattr(response.stream, "_stream", None)  # _InFlight -> httpx AsyncResponseStream
        pool_stream = getattr(stream, "_httpcore_stream", None)  # httpcore PoolByteStream
        body = getattr(pool_stream, "_stream", None)  # HTTP11ConnectionByteStream
        connection = getattr(body, "_connection", None)  # AsyncHTTP11Connection
        state = getattr(connection, "_h11_state", None)
        network = response.extensions.get("network_stream")
        if not isinstance(state, h11.Connection) or network is None:
            return None
        if getattr(connection, "_network_stream", None) is not network or state.their_state is not h11.SEND_BODY:
            return None
        trio_stream = getattr(network, "_stream", None)  # httpcore's TrioStream wraps a trio stream
        if type(trio_stream) is not trio.SocketStream:
            tls = TlsReceiver.attach(trio_stream)  # trio.SSLStream over TCP; anything else: httpx's path
            return None if tls is None else cls(state, tls[1], tls[0])
        trio_socket = trio_stream.socket
        raw = getattr(trio_socket, "_sock", None)
        if not isinstance(raw, socket.socket) or raw.getblocking():
            return None
        return cls(state, trio_socket, raw.recv)

    def read_ready(self) -> bytes:
        """Every body byte that can be had now without blocking (``b""`` for none yet or at the end:
        see :attr:`done`).

        Raises:
            UpstreamConnectionError: the connection broke, or closed before the body's end.
        """
        if self._dry:
            return b""
        if self._own:
            return self._read_own()
        if not self._tried:
            self._tried = True
            if self._take_over(buffered=True):  # the first call: take the bytes h11 holds too
                first: list[bytes] = []
                if self._buf and self._decode(self._buf, first):  # the whole body came with the head
                    return b"".join(first) + self._read_h11_end()
                return b"".join(first) + self._read_own()
        state = self._h11
        out: list[bytes] = []
        size = 0
        short = False
        while not self.done:
            try:
                event = state.next_event()
            except h11.RemoteProtocolError:
                raise transport_error(httpx.RemoteProtocolError("incomplete body"), peer=BACKEND) from None
            if event is h11.NEED_DATA:
                if self._take_over():
                    if not (size >= MAX_READY or short):
                        out.append(self._read_own())
                    break
                if size >= MAX_READY or short:  # a short read took all there was: don't ask again
                    break  # (saves a failing recv per event; the wait returns at once if more came)
                data = self._recv_some()
                if data is None:
                    break
                state.receive_data(data)  # b"": the peer closed; h11 says whether the body was whole
                size += len(data)
                short = 0 < len(data) < READ_BYTES
                self._dry = short
            elif type(event) is h11.Data:
                out.append(event.data)
            else:  # EndOfMessage (or the connection closed / paused: nothing more to read either way)
                self.done = True
        return b"".join(out)

    def _recv_some(self) -> bytes | None:
        """One ``recv`` of up to :data:`READ_BYTES`: the bytes (``b""``: the peer closed), or ``None``
        when it would block.

        Raises:
            UpstreamConnectionError: the connection broke.
        """
        try:
            return self._recv(READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            raise transport_error(httpx.ReadError("recv failed"), peer=BACKEND) from None

    def _take_over(self, *, buffered: bool = False) -> bool:
        """Decode the chunks here from now on if h11 stands at a chunk boundary with nothing
        buffered; ``True`` when it did (see the module docstring). With ``buffered``, bytes h11
        holds unread are moved to this reader first (h11's ``_receive_buffer``, checked): the first
        call, when httpcore's read of the head also brought body bytes, so that h11 does not decode
        the chunks of a burst one ``next_event`` at a time."""
        state = self._h11
        reader = getattr(state, "_reader", None)
        if (
            type(reader) is not h11._readers.ChunkedReader
            or reader._bytes_in_chunk != 0
            or reader._reading_trailer
        ):
            return False
        handed = reader._bytes_to_discard
        if not isinstance(handed, bytes) or len(handed) > 2:
            return False
        pending, closed = state.trailing_data
        if closed or (pending and not buffered):
            return False
        if pending:
            extract = getattr(getattr(state, "_receive_buffer", None), "maybe_extract_at_most", None)
            if extract is None:
                return False
            self._buf += extract(len(pending))
            if state.trailing_data != (b"", False):  # not h11 0.16's buffer: the bytes are gone, so stop
                raise transport_error(httpx.RemoteProtocolError("h11's buffer could not be taken"), peer=BACKEND)
        self._own, self._handed, self._discard = True, handed, handed
        return True

    def _read_own(self) -> bytes:
        """:meth:`read_ready` while the chunks are decoded here: receive until the socket would
        block (one ``recv`` when it returned less than asked), decode, hand the end to h11.

        Raises:
            UpstreamConnectionError: the connection broke or closed mid-body, or a chunk's framing
                was not HTTP/1.1's.
        """
        out: list[bytes] = []
        buf = self._buf
        size = 0
        while size < MAX_READY:
            data = self._recv_some()
            if data is None:
                break
            if not data:
                raise transport_error(httpx.RemoteProtocolError("incomplete body"), peer=BACKEND)
            size += len(data)
            if not buf and not self._in_chunk and not self._discard:  # the usual: one whole chunk
                match = _CHUNK_HEAD.match(data)
                if match is not None:
                    start = match.end()
                    end = start + int(match[1], 16)
                    if end > start and len(data) == end + 2 and data.endswith(b"\r\n"):
                        out.append(data[start:end])
                        if len(data) < READ_BYTES:
                            self._dry = True
                            break
                        continue
            buf += data
            if self._decode(buf, out):  # the last chunk: h11 has the rest
                return b"".join(out) + self._read_h11_end()
            if len(data) < READ_BYTES:
                self._dry = True
                break
        return b"".join(out)

    def _decode(self, buf: bytearray, out: list[bytes]) -> bool:
        """Move the whole chunks' payloads of ``buf`` to ``out``; ``True`` at the last chunk (its
        bytes, and h11's pending discard before them, were given to h11).

        Raises:
            UpstreamConnectionError: a chunk's framing was not HTTP/1.1's.
        """
        pos = 0
        while True:
            if self._discard:
                got = bytes(buf[pos : pos + len(self._discard)])
                if not self._discard.startswith(got):
                    raise transport_error(httpx.RemoteProtocolError("malformed chunk footer"), peer=BACKEND)
                pos += len(got)
                self._discard = self._discard[len(got) :]
                if self._discard:
                    break
            if self._in_chunk:
                piece = bytes(buf[pos : pos + self._in_chunk])
                if not piece:
                    break
                out.append(piece)
                pos += len(piece)
                self._in_chunk -= len(piece)
                if not self._in_chunk:
                    self._discard = b"\r\n"
                continue
            match = _CHUNK_HEAD.match(buf, pos)
            if match is None:
                if buf.find(b"\n", pos) >= 0 or len(buf) - pos > _MAX_HEAD:
                    raise transport_error(httpx.RemoteProtocolError("illegal chunk header"), peer=BACKEND)
                break
            size = int(match[1], 16)
            if size == 0:  # the end: h11 reads it, from where it was left (its pending discard first)
                self._own = False
                self._h11.receive_data(self._handed + bytes(buf[pos:]))
                buf.clear()
                return True
            pos = match.end()
            self._in_chunk = size
        del buf[:pos]
        return False

    def _read_h11_end(self) -> bytes:
        """After the hand-back: let h11 read the message's end (``done`` once it did; if the
        trailer is not all there yet, :meth:`read_ready` goes on through h11)."""
        out: list[bytes] = []
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError:
                raise transport_error(httpx.RemoteProtocolError("malformed chunked body"), peer=BACKEND) from None
            if type(event) is h11.Data:
                out.append(event.data)
            elif event is h11.NEED_DATA:
                break
            else:
                self.done = True
                break
        return b"".join(out)

    async def wait(self, deadline: float) -> bool:
        """Wait until the socket is readable or ``deadline`` (``trio.current_time()`` s) passes.

        Cancel-safe: the reader stays usable after this wait is cancelled.

        Returns:
            ``True`` when readable, ``False`` when the deadline passed first.
        """
        if math.isinf(deadline):
            await trio.lowlevel.wait_readable(self._trio_socket)
            self._dry = False
            return True
        with trio.move_on_at(deadline):
            await trio.lowlevel.wait_readable(self._trio_socket)
            self._dry = False
            return True
        return False

    async def readable(self) -> None:
        """Wait until the socket is readable, with no deadline of its own: the caller's cancel scope
        bounds it (cancel-safe like :meth:`wait`)."""
        await trio.lowlevel.wait_readable(self._trio_socket)
        self._dry = False

    def finish(self) -> None:
        """Read what is there without waiting, so that a body whose end already arrived leaves its
        connection reusable when the response is closed (never raises)."""
        self._dry = False  # the end may have come since the last read
        try:
            while not self.done and self.read_ready():
                pass
        except UpstreamConnectionError:
            pass


def read_timed_out() -> UpstreamConnectionError:
    """The error of a body that sent nothing for the read timeout (as httpx's ``ReadTimeout`` maps)."""
    return transport_error(httpx.ReadTimeout("no data within the read timeout"), peer=BACKEND)
