"""``codexgw config show``: the effective settings and where each came from, secrets redacted.

The output is TOML (so it can be pasted into ``config.toml``), each value followed by a comment
naming its source: ``flag``, ``env CODEXGW_…``, ``file PATH:LINE``, ``default`` or ``built-in``
(the default model aliases). Secrets (``api_key``) show as ``"<redacted>"``; the store key's value
is never shown, only where it would come from.
"""

from __future__ import annotations

import json
import re
from typing import Any

import click

from codexgw.cli.settings import OPTIONS, Resolved, load_settings

__all__ = ["config", "render_settings"]

REDACTED = "<redacted>"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _line(text: str, source: str, width: int = 38) -> str:
    return f"{text:<{width}} # {source}"


def render_settings(resolved: Resolved, *, config_line: str, store_line: str, key_line: str) -> list[str]:
    """The ``config show`` lines for ``resolved`` (pure; secrets redacted)."""
    from codexgw.translate.model_names import DEFAULT_ALIASES

    lines = [f"# config file: {config_line}", f"# store: {store_line}", f"# store key: {key_line}"]
    for table in ("serve", "notify"):
        lines += ["", f"[{table}]"]
        for option in (o for o in OPTIONS if o.table == table):
            value = resolved.values[option.key]
            source = resolved.sources[option.key]
            if value is None:
                lines.append(_line(f"# {option.name} is not set", source))
            else:
                shown = REDACTED if option.secret else value
                lines.append(_line(f"{option.name} = {_toml(shown)}", source))
    lines += ["", "[models.aliases]"]
    names = sorted({*DEFAULT_ALIASES, *resolved.aliases})
    for name in names:
        target = resolved.aliases.get(name, DEFAULT_ALIASES.get(name))
        source = resolved.alias_sources.get(name, "built-in")
        key = name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _toml(name)
        lines.append(_line(f"{key} = {_toml(target)}", source))
    return lines


def public_dict(resolved: Resolved) -> dict[str, Any]:
    """``config show --json``: ``{"settings": {key: {"value", "source"}}, "aliases": {name: {"target",
    "source"}}}``, secrets redacted."""
    from codexgw.translate.model_names import DEFAULT_ALIASES

    settings = {}
    for option in OPTIONS:
        value = resolved.values[option.key]
        if option.secret and value is not None:
            value = REDACTED
        settings[option.key] = {"value": value, "source": resolved.sources[option.key]}
    aliases = {
        name: {"target": DEFAULT_ALIASES[name], "source": "built-in"} for name in sorted(DEFAULT_ALIASES)
    }
    for name, target in resolved.aliases.items():
        aliases[name] = {"target": target, "source": resolved.alias_sources[name]}
    return {"settings": settings, "aliases": aliases}


@click.group("config")
def config() -> None:
    """Inspect codexgw's settings (config.toml, CODEXGW_* variables, defaults)."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: each setting's value and source.")
@click.pass_context
def config_show(ctx: click.Context, as_json: bool) -> None:
    """Print the settings `codexgw serve` would use, and where each came from (secrets redacted).

    Precedence: flags > environment (CODEXGW_*) > config file > defaults.
    """
    from codexgw.cli.store_key import key_source

    resolved, file = load_settings(ctx.obj)
    if as_json:
        doc = public_dict(resolved)
        doc["config_file"] = {"path": str(file.path), "exists": file.exists}
        doc["store"] = {"path": str(ctx.obj["store_dir"]), "source": ctx.obj.get("store_source", "default")}
        doc["store_key"] = {"source": key_source()}
        click.echo(json.dumps(doc, indent=2))
        return
    config_line = f"{file.path}" + ("" if file.exists else " (not found; defaults apply)")
    store_line = f"{ctx.obj['store_dir']} ({ctx.obj.get('store_source', 'default')})"
    for line in render_settings(
        resolved,
        config_line=config_line,
        store_line=store_line,
        key_line=key_source() or "none (the store is not encrypted, or no key is set)",
    ):
        click.echo(line)


@config.command("path")
@click.pass_context
def config_path(ctx: click.Context) -> None:
    """Print the config file's path (whether or not it exists)."""
    import os

    from codexgw.cli.config_file import config_path_from

    path, _explicit = config_path_from(ctx.obj.get("config_path"), os.environ)
    click.echo(str(path))
