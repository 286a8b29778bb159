"""The ``codexgw`` click group and where every command comes from.

=================  ==========================================================================
``accounts …``     :mod:`codexgw.cli.accounts` (import, list, enable, disable, rename, remove,
                   export, refresh) and :mod:`codexgw.cli.scheduling` (set, pin, unpin,
                   strategy, usage)
``login …``        :mod:`codexgw.cli.login` (pkce, device, and the flows behind them)
``serve``          :mod:`codexgw.cli.serve`
``status``         :mod:`codexgw.cli.status`
``configure …``    :mod:`codexgw.cli.configure`
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

from pathlib import Path

import click

from codexgw import __version__
from codexgw.cli import scheduling
from codexgw.cli.accounts import accounts
from codexgw.cli.config_cmd import config
from codexgw.cli.configure import configure
from codexgw.cli.doctor import doctor
from codexgw.cli.login import login
from codexgw.cli.serve import serve
from codexgw.cli.service import service
from codexgw.cli.setup import setup
from codexgw.cli.status import status
from codexgw.cli.store_cmd import store
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
main.add_command(config)
main.add_command(store)
main.add_command(service)
main.add_command(doctor)
main.add_command(setup)
