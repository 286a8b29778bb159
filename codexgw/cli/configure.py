"""``codexgw configure codex``: point the Codex CLI at this gateway by editing its ``config.toml``.

Codex reads ``$CODEX_HOME/config.toml`` (default ``~/.codex``; codex-protocol.md §5, §12.1). A custom
provider block makes it open a WebSocket on ``{base_url}/responses`` (or POST there)::

    model_provider = "codexgw"
    [model_providers.codexgw]
    name = "codexgw"
    base_url = "http://127.0.0.1:8080/v1"
    wire_api = "responses"
    supports_websockets = true       # the Responses WebSocket (codex-protocol.md §9)
    env_key = "CODEXGW_API_KEY"      # only when the gateway needs a key

The file is edited as text, so comments, key order and every other table stay byte for byte; only
the lines of the keys above change (or are added). Before and after, the file is parsed with
``tomllib`` and the result is checked: the managed keys hold the wanted values and everything else
parses exactly as before; otherwise nothing is written. The previous file is kept as
``config.toml.bak-<timestamp>``. Running the command twice changes nothing the second time.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from codexgw.cli.common import CliError, cli_name, default_codex_home
from codexgw.config import is_loopback

__all__ = ["ConfigEdit", "configure", "edit_codex_config"]

DEFAULT_BASE_URL = "http://127.0.0.1:8080/v1"
ENV_KEY = "CODEXGW_API_KEY"

_HEADER = re.compile(r"^\s*\[(\[)?\s*(?P<path>[^\[\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*(?P<key>[A-Za-z0-9_-]+|"[^"]*"|'[^']*')\s*=""")


class ConfigError(CliError):
    """The config cannot be edited safely (reported as ``error: …``, exit status 1)."""


@dataclass
class ConfigEdit:
    """The outcome of :func:`edit_codex_config`.

    Attributes:
        text: the new file contents.
        changes: one human line per key set, added or removed (empty: nothing to do).
    """

    text: str
    changes: list[str]


def _toml_string(value: str | bool) -> str:
    """A TOML value: ``true``/``false`` for a bool, else a basic string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _split_path(path: str) -> list[str]:
    """``model_providers."codexgw"`` → ``["model_providers", "codexgw"]``."""
    parts = re.findall(r"""\s*("[^"]*"|'[^']*'|[^.\s]+)\s*(?:\.|$)""", path)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


def _is_header(line: str) -> re.Match[str] | None:
    return _HEADER.match(line) if line.lstrip().startswith("[") else None


def _key_of(line: str) -> str | None:
    match = _KEY.match(line)
    if match is None:
        return None
    key = match["key"]
    return key[1:-1] if key[:1] in "\"'" else key


def _set_key(
    lines: list[str], start: int, end: int, key: str, value: str | bool | None
) -> tuple[int, str | None]:
    """Set ``key = value`` (``None``: remove it) in ``lines[start:end]``.

    Returns:
        ``(line count delta, change description or None when already so)``.
    """
    for i in range(start, end):
        if _key_of(lines[i]) == key:
            if value is None:
                del lines[i]
                return -1, f"removed {key}"
            try:
                old = tomllib.loads(lines[i]).get(key)
            except tomllib.TOMLDecodeError:  # a value spanning several lines
                raise ConfigError(f"{key} spans several lines in config.toml; edit it by hand") from None
            if old == value:
                return 0, None
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            lines[i] = f"{indent}{key} = {_toml_string(value)}{_trailing_comment(lines[i])}\n"
            was = old if isinstance(old, bool) else str(old)
            return 0, f"set {key} = {_toml_string(value)} (was {_toml_string(was)})"
    if value is None:
        return 0, None
    at = start
    for i in range(start, end):
        if _key_of(lines[i]) is not None:
            at = i + 1
    if at > 0 and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    lines.insert(at, f"{key} = {_toml_string(value)}\n")
    return 1, f"added {key} = {_toml_string(value)}"


def _trailing_comment(line: str) -> str:
    """The ``  # comment`` at the end of a one-line ``key = value`` (with the spaces before it), or ''."""
    quote: str | None = None
    escaped = False
    for i, char in enumerate(line):
        if quote == '"' and escaped:
            escaped = False
        elif quote == '"' and char == "\\":
            escaped = True
        elif quote is not None:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "#":
            start = len(line[:i].rstrip())
            return line[start:].rstrip("\r\n")
    return ""


def _sections(lines: list[str]) -> list[tuple[list[str], int]]:
    """``(table path, header line index)`` for every table header, skipping multi-line strings."""
    found = []
    in_string: str | None = None
    for i, line in enumerate(lines):
        if in_string is None and (match := _is_header(line)):
            found.append((_split_path(match["path"]), i))
        for quote in ('"""', "'''"):
            if line.count(quote) % 2 and in_string in (None, quote):
                in_string = None if in_string == quote else quote
    return found


def edit_codex_config(
    text: str, *, provider: str, base_url: str, model: str | None, env_key: str | bool | None
) -> ConfigEdit:
    """Return ``text`` with the provider block and ``model_provider`` (and ``model``) set.

    Args:
        text: the current ``config.toml`` ('' for none).
        provider: the provider id (``[model_providers.<provider>]``).
        base_url: the gateway's ``…/v1`` URL.
        model: the top-level ``model`` to set, or ``None`` to leave it.
        env_key: the env var holding the gateway key; ``None`` removes ``env_key``; ``True`` leaves
            whatever is there.

    Raises:
        ConfigError: the file is not valid TOML, defines the provider in a form this edit cannot
            change safely (inline table, dotted keys), or the edit would change anything else.
    """
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config.toml is not valid TOML ({exc}); fix it first") from None
    lines = text.splitlines(keepends=True)
    changes: list[str] = []
    sections = _sections(lines)
    top_end = sections[0][1] if sections else len(lines)
    wanted_top = {"model_provider": provider, **({"model": model} if model is not None else {})}
    for key, value in wanted_top.items():
        delta, change = _set_key(lines, 0, top_end, key, value)
        top_end += delta
        if change:
            changes.append(change)
    header = next((i for path, i in _sections(lines) if path == ["model_providers", provider]), None)
    wanted: dict[str, str | bool | None] = {
        "base_url": base_url,
        "wire_api": "responses",
        "supports_websockets": True,  # codexgw serves the Responses WebSocket (§9): Codex's first choice
    }
    if isinstance(env_key, str) or env_key is None:
        wanted["env_key"] = env_key
    if header is None:
        if provider in before.get("model_providers", {}):
            raise ConfigError(
                f"model_providers.{provider} is not written as a [model_providers.{provider}] table; "
                "edit it by hand or choose another --provider"
            )
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        block = [f"\n[model_providers.{provider}]\n", f"name = {_toml_string(provider)}\n"]
        block += [f"{k} = {_toml_string(v)}\n" for k, v in wanted.items() if v is not None]
        lines += block
        keys = ", ".join(f"{k} = {_toml_string(v)}" for k, v in wanted.items() if v is not None)
        changes.append(f"added [model_providers.{provider}] ({keys})")
    else:
        following = [i for _path, i in _sections(lines) if i > header]
        end = following[0] if following else len(lines)
        if not any(_key_of(lines[i]) == "name" for i in range(header + 1, end)):
            wanted = {"name": provider, **wanted}
        for key, value in wanted.items():
            delta, change = _set_key(lines, header + 1, end, key, value)
            end += delta
            if change:
                changes.append(f"[model_providers.{provider}] {change}")
    new_text = "".join(lines)
    _verify(before, new_text, provider, wanted_top, wanted)
    return ConfigEdit(text=new_text, changes=changes)


def _verify(
    before: dict[str, Any], new_text: str, provider: str, top: dict[str, str], block: dict[str, Any]
) -> None:
    """Check the edit did what it should and nothing else (see the module docstring)."""
    try:
        after = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"editing config.toml would make it invalid ({exc}); edit it by hand") from None
    ok = all(after.get(k) == v for k, v in top.items())
    got = after.get("model_providers", {}).get(provider, {})
    ok = ok and all(got.get(k) == v for k, v in block.items())
    strip_a, strip_b = copy.deepcopy(after), copy.deepcopy(before)
    for data in (strip_a, strip_b):
        for key in top:
            data.pop(key, None)
        data.get("model_providers", {}).pop(provider, None)
        if data.get("model_providers") == {}:
            data.pop("model_providers")
    others_a = {k: v for k, v in got.items() if k not in block and k != "name"}
    others_b = {
        k: v
        for k, v in before.get("model_providers", {}).get(provider, {}).items()
        if k not in block and k != "name"
    }
    if not ok or strip_a != strip_b or others_a != others_b:
        raise ConfigError("could not edit config.toml safely (unusual layout); edit it by hand")


def _needs_key(base_url: str) -> bool:
    host = urlsplit(base_url).hostname or ""
    return bool(os.environ.get(ENV_KEY)) or not is_loopback(host)


@click.group("configure")
def configure() -> None:
    """Point other tools at this gateway."""


@configure.command("codex")
@click.option(
    "--codex-home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Codex's home directory (default: $CODEX_HOME or ~/.codex).",
)
@click.option("--create", is_flag=True, help="Create the Codex home directory when it does not exist.")
@click.option("--provider", default="codexgw", show_default=True, help="Provider id in config.toml.")
@click.option("--model", default=None, help="Also set Codex's default model (e.g. gpt-5.5).")
@click.option(
    "--base-url",
    default=DEFAULT_BASE_URL,
    show_default=True,
    help="The gateway's /v1 URL, as Codex reaches it.",
)
@click.option(
    "--env-key/--no-env-key",
    default=None,
    help=f"Send the gateway key from ${ENV_KEY} (default: when {ENV_KEY} is set or the URL is not loopback).",
)
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
def configure_codex(
    codex_home: Path | None,
    create: bool,
    provider: str,
    model: str | None,
    base_url: str,
    env_key: bool | None,
    dry_run: bool,
) -> None:
    """Write or update the codexgw provider in Codex's config.toml (keeps everything else)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", provider):
        raise ConfigError("--provider may only hold letters, digits, '_' and '-'")
    base_url = base_url.rstrip("/")
    if urlsplit(base_url).scheme not in ("http", "https"):
        raise ConfigError("--base-url must be an http:// or https:// URL, e.g. " + DEFAULT_BASE_URL)
    home = codex_home.expanduser() if codex_home else default_codex_home()
    if not home.is_dir() and not create:
        where = (
            "--codex-home" if codex_home else "$CODEX_HOME" if os.environ.get("CODEX_HOME") else "~/.codex"
        )
        raise ConfigError(
            f"{home} does not exist ({where}); pass --create to create it, or point --codex-home "
            "at the Codex CLI's home"
        )
    path = home / "config.toml"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    use_key: str | bool | None = True  # leave an existing env_key alone
    if env_key is True or (env_key is None and _needs_key(base_url)):
        use_key = ENV_KEY
    elif env_key is False:
        use_key = None
    edit = edit_codex_config(text, provider=provider, base_url=base_url, model=model, env_key=use_key)
    if not edit.changes:
        click.echo(f"{path} already points Codex at {base_url}; nothing changed.")
    else:
        verb = ("Would update" if text else "Would create") if dry_run else ("Updated" if text else "Created")
        click.echo(f"{verb} {path}:")
        for change in edit.changes:
            click.echo(f"  {change}")
        if not dry_run:
            _write(path, edit.text, backup=bool(text))
    _say_model(tomllib.loads(edit.text).get("model"), model)
    key_var = tomllib.loads(edit.text)["model_providers"][provider].get("env_key")
    prefix = "" if codex_home is None else f"CODEX_HOME={home} "
    if isinstance(key_var, str):
        prefix = f"{key_var}=<gateway key> {prefix}"
    click.echo(f"Try it (with `{cli_name()} serve` running):")
    click.echo(f'  {prefix}codex exec --skip-git-repo-check "say hi"')


def _say_model(configured: Any, chosen: str | None) -> None:
    """Name the model Codex will ask for; warn when it is left to the Codex CLI's own default, or
    is not one the ChatGPT backend is known to serve (the built-in catalogue, codex-protocol.md §10)."""
    from codexgw.translate.params import split_model_effort
    from codexgw.upstream.catalog import BUILTIN_MODELS

    known = [m["slug"] for m in BUILTIN_MODELS if m.get("visibility", "list") == "list"]
    if isinstance(configured, str) and configured:
        source = "set now" if chosen else "already in config.toml"
        click.echo(f"Model: {configured} ({source})")
        if split_model_effort(configured)[0] not in {m["slug"] for m in BUILTIN_MODELS}:
            click.echo(
                f"warning: {configured} is not a model ChatGPT accounts are known to serve "
                f"({', '.join(known)}); choose one with --model, or list them: GET /v1/models",
                err=True,
            )
        return
    click.echo(
        "warning: no model is set, so Codex asks for its own default model, which ChatGPT accounts may "
        f"not serve; choose one with --model {known[0]} (the gateway lists them: GET /v1/models)",
        err=True,
    )


def _write(path: Path, text: str, *, backup: bool) -> None:
    """Back up the old file (same mode), then replace it atomically (0600 when new)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    if backup:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = path.with_name(f"{path.name}.bak-{stamp}")
        n = 1
        while target.exists():
            target = path.with_name(f"{path.name}.bak-{stamp}-{n}")
            n += 1
        shutil.copy2(path, target)
        click.echo(f"Backup: {target}")
    tmp = path.with_name(f".{path.name}.codexgw-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
