"""``codexgw store encrypt|decrypt|status``: encryption at rest (:mod:`codexgw.store.encryption`).

The passphrase comes from ``--key-file``, a new key file (``--generate-key-file``), or the sources
every process uses (:mod:`codexgw.cli.store_key`: ``CODEXGW_STORE_KEY``, ``CODEXGW_STORE_KEY_FILE``,
a systemd credential). It is never printed.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import click

from codexgw.cli.common import CliError
from codexgw.cli.store_key import KEY_FILE_ENV, StoreKeyError, passphrase_from_environment, read_key_file

__all__ = ["store"]


def _write_new_key_file(path: Path) -> str:
    """Create ``path`` (0600, refusing an existing file) holding a random 43-character passphrase."""
    passphrase = secrets.token_urlsafe(32)
    path = path.expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CliError(f"{path} exists already; give it with --key-file, or choose another path") from None
    except OSError as e:
        raise CliError(f"cannot create key file {path}: {e.strerror or e}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(passphrase + "\n")
    return passphrase


def _passphrase(key_file: Path | None) -> str | None:
    try:
        if key_file is not None:
            return read_key_file(key_file.expanduser())
        return passphrase_from_environment()
    except StoreKeyError as e:
        raise CliError(str(e)) from None


def _open(store_dir: Path, passphrase: str | None) -> object:
    from codexgw.store import Store, StoreError

    try:
        return Store.open(store_dir, passphrase=passphrase)
    except StoreError as e:
        raise CliError(str(e)) from None


@click.group("store")
def store() -> None:
    """Encrypt the store at rest, or check it (tokens and stored conversations)."""


@store.command("encrypt")
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File holding the passphrase (mode 0600, >= 16 characters).",
)
@click.option(
    "--generate-key-file",
    "new_key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Create this file (0600) with a random passphrase, and encrypt under it.",
)
@click.pass_context
def store_encrypt(ctx: click.Context, key_file: Path | None, new_key_file: Path | None) -> None:
    """Encrypt every token (and stored conversation) with AES-256-GCM under a passphrase.

    The key is derived with scrypt and a salt kept in the store. Afterwards every process that opens
    the store needs the passphrase: CODEXGW_STORE_KEY, CODEXGW_STORE_KEY_FILE, or the systemd
    credential that `codexgw service install --store-key-file` wires. Stop a running server first.
    Needs the cryptography package (pip install cryptography, or Debian's python3-cryptography).
    """
    from codexgw.store import StoreError
    from codexgw.store.crypto import MIN_PASSPHRASE_CHARS
    from codexgw.store.encryption import encrypt_store

    if key_file is not None and new_key_file is not None:
        raise click.UsageError("--key-file and --generate-key-file exclude each other")
    passphrase = _write_new_key_file(new_key_file) if new_key_file else _passphrase(key_file)
    if not passphrase:
        raise CliError(
            "no passphrase: set CODEXGW_STORE_KEY, or pass --key-file FILE, or --generate-key-file FILE"
        )
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise CliError(f"the store passphrase must have at least {MIN_PASSPHRASE_CHARS} characters")
    opened = _open(ctx.obj["store_dir"], passphrase)
    already = opened.encrypted  # type: ignore[attr-defined]
    try:
        accounts, responses = encrypt_store(opened, passphrase)  # type: ignore[arg-type]
    except StoreError as e:
        raise CliError(str(e)) from None
    where = ctx.obj["store_dir"]
    if already:
        click.echo(f"{where} is already encrypted; old values scrubbed from its files")
        return
    click.echo(f"encrypted {accounts} account(s) and {responses} stored response(s) in {where}")
    hint = new_key_file or key_file
    if hint is not None:
        click.echo(f"every codexgw process needs the key now: export {KEY_FILE_ENV}={hint.expanduser()}")
    else:
        click.echo("every codexgw process needs the key now (CODEXGW_STORE_KEY or CODEXGW_STORE_KEY_FILE)")
    click.echo("keep a copy of the passphrase somewhere safe: without it the logins cannot be read")


@store.command("decrypt")
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File holding the passphrase.",
)
@click.pass_context
def store_decrypt(ctx: click.Context, key_file: Path | None) -> None:
    """Store the tokens in clear again (the files stay 0600 in a 0700 directory)."""
    from codexgw.store import StoreError
    from codexgw.store.encryption import decrypt_store

    opened = _open(ctx.obj["store_dir"], _passphrase(key_file))
    try:
        accounts, responses = decrypt_store(opened)  # type: ignore[arg-type]
    except StoreError as e:
        raise CliError(str(e)) from None
    click.echo(
        f"decrypted {accounts} account(s) and {responses} stored response(s) in {ctx.obj['store_dir']}"
    )


@store.command("status")
@click.pass_context
def store_status(ctx: click.Context) -> None:
    """Say whether the store is encrypted, where the key would come from, and the files' modes."""
    import sqlite3
    import stat

    from codexgw.cli.store_key import key_source
    from codexgw.store import Store, StoreError
    from codexgw.store.crypto import crypto_available

    store_dir: Path = ctx.obj["store_dir"]
    plain = Store(store_dir)
    if not plain.path.exists():
        raise CliError(f"no store at {store_dir}")
    try:
        Store.open(store_dir)  # migrates; an encrypted store refuses only after that
    except StoreError as e:
        if "encrypted" not in str(e):
            raise CliError(str(e)) from None
    try:
        record = plain.key_record()
    except sqlite3.Error as e:
        raise CliError(f"store {plain.path}: {e}") from None
    click.echo(f"store: {store_dir}")
    click.echo(f"encrypted: {f'yes (AES-256-GCM, scrypt n={record.n})' if record else 'no'}")
    click.echo(f"key source: {key_source() or 'none set'}")
    click.echo(f"cryptography package: {'installed' if crypto_available() else 'not installed'}")
    for path in sorted(store_dir.iterdir()):
        mode = stat.S_IMODE(path.stat().st_mode)
        click.echo(f"  {path.name:<24} {mode:04o} {path.stat().st_size:>10} bytes")
