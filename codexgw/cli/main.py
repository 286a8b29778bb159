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
``users …``        :mod:`codexgw.cli.users` (add, list, remove, passwd), with ``audit``;
                   ``users set`` and ``settings``: :mod:`codexgw.cli.admin`
``keys …``         :mod:`codexgw.cli.keys` (create, list, set, revoke, rotate, usage)
``config show``    :mod:`codexgw.cli.config_cmd` (settings from :mod:`codexgw.cli.settings`)
``store …``        :mod:`codexgw.cli.store_cmd` (encrypt, decrypt, status)
``service …``      :mod:`codexgw.cli.service` (install, uninstall, status, logs, restart; unit
                   text from :mod:`codexgw.cli.units`)
``setup``          :mod:`codexgw.cli.setup` (account, key, Codex config, service, health)
``doctor``         :mod:`codexgw.cli.doctor` (checks: :mod:`codexgw.cli.doctor_checks`, facts:
                   :mod:`codexgw.cli.doctor_facts`)
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
from codexgw.cli import admin, scheduling
from codexgw.cli.accounts import accounts
from codexgw.cli.audited import audit_commands
from codexgw.cli.common import EXIT_FAILURE, EXIT_INTERRUPTED, cli_name, store_option
from codexgw.cli.config_cmd import config
from codexgw.cli.configure import configure
from codexgw.cli.doctor import doctor
from codexgw.cli.keys import keys
from codexgw.cli.login import login
from codexgw.cli.serve import serve
from codexgw.cli.service import service
from codexgw.cli.setup import setup
from codexgw.cli.status import status
from codexgw.cli.store_cmd import store
from codexgw.cli.users import audit, users
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
        # Completion is keyed by the command's name, not by how it was run (python -m, ./codexgw.pyz).
        complete_var = complete_var or "_CODEXGW_COMPLETE"
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
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    show_default="~/.config/codexgw/config.toml",
    help="Config file (TOML: [serve], [models.aliases], [notify]). Env: CODEXGW_CONFIG.",
)
@click.version_option(__version__, prog_name="codexgw")
@click.pass_context
def main(ctx: click.Context, store_dir: Path | None, config_path: Path | None) -> None:
    """codexgw: an OpenAI-compatible API over a pool of ChatGPT (Codex) logins.

    Exit status: 0 success, 1 failure, 2 usage error (or `serve` could not start), 130 interrupted.

    Shell completion: eval "$(_CODEXGW_COMPLETE=bash_source codexgw)" (zsh_source, fish_source).
    """
    ctx.ensure_object(dict)
    ctx.obj["store_dir"] = (store_dir or default_store_dir()).expanduser()
    ctx.obj["store_source"] = _source(ctx, "store_dir", "CODEXGW_HOME")
    ctx.obj["config_path"] = config_path


def _source(ctx: click.Context, param: str, env: str) -> str:
    """``flag``, ``env NAME`` or ``default``: where a global option's value came from."""
    found = ctx.get_parameter_source(param)
    if found == click.core.ParameterSource.COMMANDLINE:
        return f"flag --{param.split('_')[0]}"
    if found == click.core.ParameterSource.ENVIRONMENT:
        return f"env {env}"
    return "default"


scheduling.register(accounts)
main.add_command(accounts)
main.add_command(login)
main.add_command(serve)
main.add_command(status)
main.add_command(configure)
main.add_command(users)
main.add_command(keys)
main.add_command(audit)
main.add_command(config)
main.add_command(store)
main.add_command(service)
main.add_command(doctor)
main.add_command(setup)
admin.register(main, users)


# `accounts list --store X` as well as `--store X accounts list`: every command that reads the store.
for _command in [
    *accounts.commands.values(),
    *login.commands.values(),
    *store.commands.values(),
    *service.commands.values(),
    *config.commands.values(),
    *users.commands.values(),
    *keys.commands.values(),
    audit,
    admin.settings,
    serve,
    status,
    doctor,
    setup,
]:
    store_option(_command)

audit_commands(main)  # the account, pool and store commands write their audit entries (issue 12)
