"""A throwaway TLS identity for loopback tests: a self-signed certificate for 127.0.0.1 (as a
subjectAltName IP, which Python's hostname check needs) and the server and client ``SSLContext``s
that use it. Built in memory with ``cryptography`` (a dev dependency), nothing written but a temp file.
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@functools.cache
def _pem() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_context() -> ssl.SSLContext:
    """TLS for a loopback server on 127.0.0.1 (HTTP/1.1 only)."""
    cert, key = _pem()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "cert.pem").write_bytes(cert)
        (Path(tmp) / "key.pem").write_bytes(key)
        ctx.load_cert_chain(Path(tmp) / "cert.pem", Path(tmp) / "key.pem")
    return ctx


def client_context() -> ssl.SSLContext:
    """A client context that trusts only :func:`server_context`'s certificate (hostname checked)."""
    return ssl.create_default_context(cadata=_pem()[0].decode())


def write_pem(directory: Path) -> tuple[Path, Path]:
    """The certificate and its key as PEM files in ``directory`` (for servers and ``SSL_CERT_FILE``)."""
    cert, key = _pem()
    (directory / "cert.pem").write_bytes(cert)
    (directory / "key.pem").write_bytes(key)
    (directory / "key.pem").chmod(0o600)
    return directory / "cert.pem", directory / "key.pem"
