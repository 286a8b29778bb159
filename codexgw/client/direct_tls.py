"""Receiving a TLS connection's plaintext without trio's ``SSLStream.receive_some`` (issue 17).

The real backend is HTTPS, so for :class:`codexgw.client.direct.DirectBody` to help there it must
read TLS application data in the stream's own task too. :class:`TlsReceiver` does what
``trio.SSLStream.receive_some`` does, minus its awaits: it reads the raw socket without blocking,
feeds the ``SSLStream``'s own incoming ``MemoryBIO`` and asks the ``SSLStream``'s own
``ssl.SSLObject`` for the plaintext. Because it uses the stream's own objects, nothing is left
behind when httpcore reads the connection again (a kept-alive connection's next response goes
through ``SSLStream.receive_some`` as before: plaintext or raw bytes still buffered are read first).
Bytes the TLS layer wants to send in answer (a TLS 1.3 KeyUpdate's reply, say) stay in the
``SSLStream``'s outgoing ``MemoryBIO``; trio sends them with the connection's next write.

It relies on trio 0.35's ``SSLStream`` layout (``transport_stream``, ``_ssl_object``,
``_incoming``, ``_outgoing``, ``_state``, ``_handshook``); :meth:`TlsReceiver.attach` checks each
and returns ``None`` when anything differs, and the caller keeps httpx's path.
"""

from __future__ import annotations

import socket
import ssl

import trio

__all__ = ["TlsReceiver"]


class TlsReceiver:
    """``recv(n)`` for the plaintext of one handshaken ``trio.SSLStream`` over a TCP socket.

    Called like ``socket.recv``: returns up to ``n`` plaintext bytes, ``b""`` once the peer closed
    (``close_notify`` or a bare TCP close: which one does not matter to a reader that checks the
    body's own end), raises ``BlockingIOError`` when nothing is there yet, and ``OSError`` (an
    ``ssl.SSLError`` among them) when the connection broke.

    A return shorter than ``n`` means the socket had no more: it was asked and gave less than
    asked, and every whole TLS record received was decrypted (none is left for a wait on the
    socket to miss).
    """

    def __init__(self, ssl_object: ssl.SSLObject, incoming: ssl.MemoryBIO, raw: socket.socket) -> None:
        self._read = ssl_object.read
        self._plain_pending = ssl_object.pending
        self._incoming = incoming
        self._recv = raw.recv
        self._closed = False  # the peer's close_notify, or its TCP close, was read

    @classmethod
    def attach(cls, stream: object) -> tuple[TlsReceiver, trio.socket.SocketType] | None:
        """The receiver for ``stream`` and the trio socket to wait on, or ``None`` when ``stream``
        is not a handshaken, unbroken ``trio.SSLStream`` straight over a non-blocking
        ``trio.SocketStream``."""
        if type(stream) is not trio.SSLStream:
            return None
        inner = stream.transport_stream
        ssl_object = getattr(stream, "_ssl_object", None)
        incoming = getattr(stream, "_incoming", None)
        handshook = getattr(stream, "_handshook", None)
        state = getattr(stream, "_state", None)
        if (
            type(inner) is not trio.SocketStream
            or not isinstance(ssl_object, ssl.SSLObject)
            or not isinstance(incoming, ssl.MemoryBIO)
            or not isinstance(getattr(stream, "_outgoing", None), ssl.MemoryBIO)
            or getattr(handshook, "done", False) is not True
            or getattr(state, "name", None) != "OK"
        ):
            return None
        raw = getattr(inner.socket, "_sock", None)
        if not isinstance(raw, socket.socket) or raw.getblocking():
            return None
        return cls(ssl_object, incoming, raw), inner.socket

    def __call__(self, n: int) -> bytes:
        """Up to ``n`` plaintext bytes now (see the class docstring for the contract)."""
        if self._closed:
            return b""
        out = bytearray()
        incoming = self._incoming
        socket_dry = False
        while len(out) < n:
            if incoming.pending or self._plain_pending():
                try:
                    got = self._read(n - len(out))
                except ssl.SSLWantReadError:  # only part of a record is here
                    got = None
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):  # the peer closed
                    self._closed = True
                    break  # after plaintext: returned now, and the caller's next call sees b""
                if got is not None:
                    if not got:  # (not documented for an SSLObject; taken as the close it would be)
                        self._closed = True
                        break
                    out += got
                    continue
            if socket_dry or incoming.eof:
                break
            try:
                data = self._recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            if not data:
                incoming.write_eof()
                if not incoming.pending:
                    break
                continue
            incoming.write(data)
            socket_dry = len(data) < 65536
        if out:
            return bytes(out)
        if self._closed or incoming.eof:
            return b""
        raise BlockingIOError
