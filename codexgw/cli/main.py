"""The ``codexgw`` click group and where every command comes from.

=================  ==========================================================================
``accounts …``     :mod:`codexgw.cli.accounts` (import, list, enable, disable, reset, rename, remove,
                   export, refresh) and :mod:`codexgw.cli.scheduling` (set, pin, unpin,
                   strategy, usage)
``login …``        :mod:`codexgw.cli.login` (pkce, device, and the flows behind them);
                   the flows of accounts refresh/remove/export: :mod:`codexgw.cli.flows`
``serve``          :mod:`codexgw.cli.serve`
``status``         :mod:`codexgw.cli.status`
``configure …``    :mod:`codexgw.cli.configure`
=================  ==========================================================================

:func:`main` is the entry point (``pyproject.toml``, the zipapp, ``python -m codexgw``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from codexgw import __version__
from codexgw.cli import scheduling
from codexgw.cli.accounts import accounts
from codexgw.cli.common import EXIT_FAILURE, EXIT_INTERRUPTED, cli_name, store_option
from codexgw.cli.configure import configure
from codexgw.cli.login import login
from codexgw.cli.serve import serve
from codexgw.cli.status import status
from codexgw.config import command_name, default_store_dir

__all__ = ["main"]

TRACEBACK_ENV = "CODEXGW_TRACEBACK"
"""Set to 1 to see the traceback of an unexpected error instead of its one line."""


def _error(message: str) -> None:
    click.echo(f"error: {message}", err=True)


def _usage_line(exc: click.UsageError) -> str:
    """Click's usage error as one line: ``no such option: --x (see `codexgw serve --help`)``."""
    message = " ".join(exc.format_message().split()).replace(". (", " (")
    message = message[:1].lower() + message[1:] if message[1:2].islower() else message
    where = exc.ctx.command_path if exc.ctx is not None else cli_name()
    return f"{message.rstrip('.')} (see `{where} --help`)"


class CodexgwGroup(click.Group):
    """The root group: every failure is one ``error: …`` line on stderr, with the exit codes
    1 (failure), 2 (usage error: a wrong option, or a ``serve`` that cannot start) and 130
    (interrupted); the program name in usage and hints is the command as the user ran it."""

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(
                args, prog_name or command_name(), complete_var, standalone_mode=False, **extra
            )
        except click.UsageError as exc:
            _error(_usage_line(exc))
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            _error(exc.format_message())
            sys.exit(exc.exit_code)
        except click.Abort as exc:
            interrupted = isinstance(exc.__cause__, KeyboardInterrupt | EOFError)
            _error("interrupted" if interrupted else "aborted")
            sys.exit(EXIT_INTERRUPTED if interrupted else EXIT_FAILURE)
        except KeyboardInterrupt:
            _error("interrupted")
            sys.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            if os.environ.get(TRACEBACK_ENV):
                raise
            _error(f"unexpected {type(exc).__name__}: {exc} (a bug? {TRACEBACK_ENV}=1 shows where)")
            sys.exit(EXIT_FAILURE)
        sys.exit(code if isinstance(code, int) else 0)


@click.group("codexgw", cls=CodexgwGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--store",
    "store_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="CODEXGW_HOME",
    default=None,
    show_default="~/.codexgw",
    help="Store directory (accounts database); also accepted after the command. Env: CODEXGW_HOME.",
)
@click.version_option(__version__, prog_name="codexgw")
@click.pass_context
def main(ctx: click.Context, store_dir: Path | None) -> None:
    """codexgw: an OpenAI-compatible API over a pool of ChatGPT (Codex) logins.

    Exit status: 0 success, 1 failure, 2 usage error (or `serve` could not start), 130 interrupted.
    """
    ctx.ensure_object(dict)
    ctx.obj["store_dir"] = (store_dir or default_store_dir()).expanduser()


scheduling.register(accounts)
main.add_command(accounts)
main.add_command(login)
main.add_command(serve)
main.add_command(status)
main.add_command(configure)


# `accounts list --store X` as well as `--store X accounts list`: every command that reads the store.
for _command in [*accounts.commands.values(), *login.commands.values(), serve, status]:
    store_option(_command)
