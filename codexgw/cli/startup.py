"""Why ``codexgw serve`` could not start, in one line that says what to do.

hypercorn binds inside trio nurseries, so a busy port arrives as an ``OSError`` wrapped in several
exception groups (design §5). :func:`startup_failure` finds the error that stopped the start and
words it (:func:`explain`): a busy or privileged port, an address not on this machine, a host that
does not resolve, a certificate that does not match its key or cannot be read. The command reports it
as ``error: …`` with exit status 2 (a usage error: the options asked for something that cannot be).
"""

from __future__ import annotations

import errno
import socket
import ssl

from codexgw.cli.common import EXIT_USAGE, CliError
from codexgw.config import Settings

__all__ = ["StartupError", "explain", "startup_failure"]


class StartupError(CliError):
    """``serve`` could not start: ``error: …`` (what to change), exit status 2."""

    exit_code = EXIT_USAGE


def _leaf(exc: BaseException) -> BaseException:
    """The first non-group exception inside ``exc`` (``exc`` itself when it is none)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _head(path: str) -> bytes:
    """The first 64 KiB of ``path`` (``b""`` when unreadable)."""
    try:
        with open(path, "rb") as f:
            return f.read(65536)
    except OSError:
        return b""


def explain(exc: BaseException, settings: Settings) -> str | None:
    """One line for an error that stopped ``serve`` from starting, or ``None`` when it is not one of
    the start-up errors this knows (the caller lets it propagate)."""
    host, port = settings.host, settings.port
    where = f"{host}:{port}"
    if isinstance(exc, ssl.SSLError):
        reason = str(exc.reason or exc).lower()
        if "key values mismatch" in reason or "key_values_mismatch" in reason:
            return (
                f"the TLS key {settings.keyfile} does not belong to the certificate {settings.certfile}; "
                "pass the matching --keyfile"
            )
        for path, marker, what, option in (
            (settings.certfile, b"-----BEGIN CERTIFICATE-----", "certificate", "--certfile"),
            (settings.keyfile, b"PRIVATE KEY-----", "private key", "--keyfile"),
        ):
            if path and marker not in _head(path):
                return f"{path} is not a PEM {what} (-----BEGIN ...); pass one with {option}"
        return (
            f"cannot load the TLS certificate {settings.certfile} with key {settings.keyfile} "
            f"({exc.reason or exc}); both must be PEM files, the key unencrypted"
        )
    if isinstance(exc, socket.gaierror):
        return (
            f"cannot resolve host {host!r} ({exc.strerror or exc}); check --host (e.g. 127.0.0.1 or 0.0.0.0)"
        )
    if isinstance(exc, OSError):
        if exc.errno == errno.EADDRINUSE:
            return f"port {port} is already in use on {host}; choose another with --port"
        if exc.errno == errno.EACCES:
            return (
                f"no permission to listen on {where}: ports below 1024 need root; "
                "choose one above 1023 with --port (e.g. --port 8080)"
            )
        if exc.errno == errno.EADDRNOTAVAIL:
            return (
                f"{host} is not an address of this machine; choose another with --host "
                "(127.0.0.1 for this machine only, 0.0.0.0 for all its addresses)"
            )
        if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError) and exc.filename:
            return f"cannot read {exc.filename}: {exc.strerror}"
    return None


def startup_failure(exc: BaseException, settings: Settings) -> str | None:
    """:func:`explain` for the error inside ``exc`` (unwrapped from trio's exception groups)."""
    return explain(_leaf(exc), settings)
