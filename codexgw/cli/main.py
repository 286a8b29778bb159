"""The ``codexgw`` click group and where every command comes from.

=================  ==========================================================================
``accounts …``     :mod:`codexgw.cli.accounts` (import, list, enable, disable, rename, remove,
                   export, refresh) and :mod:`codexgw.cli.scheduling` (set, pin, unpin,
                   strategy, usage)
``login …``        :mod:`codexgw.cli.login` (pkce, device, and the flows behind them)
``serve``          :mod:`codexgw.cli.serve`
``status``         :mod:`codexgw.cli.status`
``configure …``    :mod:`codexgw.cli.configure`
``users …``        :mod:`codexgw.cli.users` (add, list, remove, passwd), with ``audit``
``keys …``         :mod:`codexgw.cli.keys` (create, list, set, revoke, rotate, usage)
=================  ==========================================================================

:func:`main` is the entry point (``pyproject.toml``, the zipapp, ``python -m codexgw``).
"""

from __future__ import annotations

from pathlib import Path

import click

from codexgw import __version__
from codexgw.cli import scheduling
from codexgw.cli.accounts import accounts
from codexgw.cli.configure import configure
from codexgw.cli.keys import keys
from codexgw.cli.login import login
from codexgw.cli.serve import serve
from codexgw.cli.status import status
from codexgw.cli.users import audit, users
from codexgw.config import default_store_dir

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store",
    "store_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="CODEXGW_HOME",
    default=None,
    show_default="~/.codexgw",
    help="Store directory (accounts database). Env: CODEXGW_HOME.",
)
@click.version_option(__version__, prog_name="codexgw")
@click.pass_context
def main(ctx: click.Context, store_dir: Path | None) -> None:
    """codexgw: an OpenAI-compatible API over a pool of ChatGPT (Codex) logins."""
    ctx.ensure_object(dict)
    ctx.obj["store_dir"] = (store_dir or default_store_dir()).expanduser()


scheduling.register(accounts)
main.add_command(accounts)
main.add_command(login)
main.add_command(serve)
main.add_command(status)
main.add_command(configure)
main.add_command(users)
main.add_command(keys)
main.add_command(audit)
