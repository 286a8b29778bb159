"""Settings: flags > CODEXGW_* environment > config.toml > defaults (codexgw.cli.settings), the
file's errors naming key, file and line (codexgw.cli.config_file), and `codexgw config show`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from codexgw.cli.config_file import ConfigFile, ConfigFileError, line_of, read_config_file
from codexgw.cli.main import main
from codexgw.cli.settings import SERVE_OPTIONS, SettingsError, resolve, settings_from
from codexgw.store import Store

CONFIG = """\
# codexgw settings
[serve]
port = 9000
api_key = "file-key-SECRET-000"
strategy = "least-used"

[models.aliases]
fast = "gpt-5.4-mini-low"

[notify]
url = "http://127.0.0.1:9/topic"
low = 30
"""


def parsed(text: str, path: str = "/etc/codexgw.toml") -> ConfigFile:
    import tomllib

    return ConfigFile(path=Path(path), data=tomllib.loads(text), text=text)


def cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env).invoke(
        main, ["--store", str(tmp_path / "store"), *args], catch_exceptions=False
    )


def test_precedence_flag_env_file_default() -> None:
    file = parsed(CONFIG)
    env = {"CODEXGW_PORT": "9100", "CODEXGW_RETRIES": "5"}
    resolved = resolve({"serve.port": 9200}, env, file)
    assert (resolved.serve("port"), resolved.sources["serve.port"]) == (9200, "flag --port")
    assert (resolved.serve("retries"), resolved.sources["serve.retries"]) == (5, "env CODEXGW_RETRIES")
    assert resolved.serve("strategy") == "least-used"
    assert resolved.sources["serve.strategy"] == "file /etc/codexgw.toml:5"
    assert (resolved.serve("host"), resolved.sources["serve.host"]) == ("127.0.0.1", "default")
    assert resolved.notify("low") == 30.0 and resolved.sources["notify.low"] == "file /etc/codexgw.toml:12"
    without_flag = resolve({"serve.port": None}, env, file)
    assert (without_flag.serve("port"), without_flag.sources["serve.port"]) == (9100, "env CODEXGW_PORT")
    only_file = resolve({}, {"CODEXGW_PORT": ""}, file)  # an empty variable counts as unset
    assert (only_file.serve("port"), only_file.sources["serve.port"]) == (9000, "file /etc/codexgw.toml:3")


def test_settings_from_resolved(tmp_path: Path) -> None:
    resolved = resolve({}, {}, parsed(CONFIG))
    settings = settings_from(resolved, store_dir=tmp_path, store_passphrase="p" * 16)
    assert settings.port == 9000 and settings.api_key == "file-key-SECRET-000"
    assert settings.model_aliases is not None
    assert settings.model_aliases["fast"] == "gpt-5.4-mini-low"
    assert settings.model_aliases["codex-mini"] == "gpt-5.4-mini"
    assert settings.notify is not None and settings.notify.url == "http://127.0.0.1:9/topic"
    assert settings.notify.low_percent == 30.0 and settings.notify.critical_percent == 5.0
    assert "SECRET" not in repr(settings) and "pppp" not in repr(settings)
    assert settings_from(resolve({}, {}, parsed("")), store_dir=tmp_path).notify is None
    from_env = settings_from(
        resolve(
            {}, {"CODEXGW_NOTIFY_URL": "http://127.0.0.1:9/t", "CODEXGW_NOTIFY_INTERVAL": "60"}, parsed("")
        ),
        store_dir=tmp_path,
    )
    assert from_env.notify is not None and (from_env.notify.url, from_env.notify.interval_s) == (
        "http://127.0.0.1:9/t",
        60.0,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[serve]\nport = 1\nprot = 2\n", "/etc/codexgw.toml:3: unknown key 'serve.prot'"),
        ('[serve]\n\nport = "8080"\n', "/etc/codexgw.toml:3: serve.port must be an integer, not a string"),
        ("[serve]\nport = 70000\n", "/etc/codexgw.toml:2: serve.port must be at most 65535"),
        ("[serve]\nretries = true\n", "/etc/codexgw.toml:2: serve.retries must be an integer, not a boolean"),
        ('[serve]\nlog_format = "xml"\n', "/etc/codexgw.toml:2: serve.log_format must be one of text, json"),
        ("serve.host = 1\n", "/etc/codexgw.toml:1: serve.host must be a string, not an integer"),
        ('serve = { port = 1, hots = "x" }\n', "/etc/codexgw.toml:1: unknown key 'serve.hots'"),
        ("[server]\nport = 1\n", "/etc/codexgw.toml:1: unknown table or key 'server'"),
        ("[models]\nalias = {}\n", "/etc/codexgw.toml:2: unknown key 'models.alias'"),
        ("[models.aliases]\nfast = 5\n", "/etc/codexgw.toml:2: models.aliases.fast must be a string"),
        (
            '[models.aliases]\nloop = "loop"\n',
            "/etc/codexgw.toml:2: models.aliases.loop: an alias cannot point",
        ),
        ("[notify]\nlow = 120\n", "/etc/codexgw.toml:2: notify.low must be at most 100"),
        (
            'x = """\n[serve]\nport = "no"\n"""\n[serve]\nport = "8"\n',
            "/etc/codexgw.toml:1: unknown table or key 'x'",
        ),
    ],
)
def test_file_errors_name_key_file_and_line(text: str, message: str) -> None:
    with pytest.raises(SettingsError) as info:
        resolve({}, {}, parsed(text))
    assert str(info.value.format_message()).startswith(message), info.value.format_message()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CODEXGW_PORT": "eighty"}, "CODEXGW_PORT='eighty' is not an integer"),
        (
            {"CODEXGW_PROBE_INTERVAL": "-1"},
            "environment CODEXGW_PROBE_INTERVAL: serve.probe_interval must be at least 0",
        ),
        ({"CODEXGW_STRATEGY": "fastest"}, "serve.strategy must be one of round-robin"),
    ],
)
def test_env_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        resolve({}, env, parsed(""))
    assert message in info.value.format_message()


def test_line_of_finds_keys_in_every_form() -> None:
    text = (
        'model = "x"\n'
        "[serve]\n"
        "  port = 1  # comment\n"
        '"log_level" = "info"\n'
        "[models]\n"
        'aliases.fast = "gpt"\n'
        "[notify]\n"
        'url = """\n'
        "low = 1\n"
        '"""\n'
        "low = 2\n"
    )
    assert line_of(text, ["serve"]) == 2
    assert line_of(text, ["serve", "port"]) == 3
    assert line_of(text, ["serve", "log_level"]) == 4
    assert line_of(text, ["models", "aliases", "fast"]) == 6
    assert line_of(text, ["notify", "low"]) == 11  # not the line inside the multi-line string
    assert line_of(text, ["serve", "host"]) is None


def test_read_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "none.toml"
    assert read_config_file(missing, explicit=False).exists is False
    with pytest.raises(ConfigFileError, match="does not exist"):
        read_config_file(missing, explicit=True)
    bad = tmp_path / "bad.toml"
    bad.write_text("[serve]\nport = \n")
    with pytest.raises(ConfigFileError) as info:
        read_config_file(bad, explicit=True)
    assert str(bad) in info.value.format_message() and "line 2" in info.value.format_message()


def test_serve_takes_the_file_then_env_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from codexgw.cli import serve as serve_module

    seen: list[Any] = []
    monkeypatch.setattr(serve_module, "run", seen.append)
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    Store.open(tmp_path / "store")  # serve refuses a store that does not exist (issue 15)
    result = cli(
        tmp_path, "--config", str(path), "serve", "--retries", "1", env={"CODEXGW_LOG_LEVEL": "debug"}
    )
    assert result.exit_code == 0, result.output
    [settings] = seen
    assert (settings.port, settings.retries, settings.log_level, settings.strategy) == (
        9000,
        1,
        "debug",
        "least-used",
    )
    seen.clear()
    result = cli(tmp_path, "serve", "--port", "1234", env={"CODEXGW_CONFIG": str(path), "CODEXGW_PORT": "99"})
    assert result.exit_code == 0, result.output
    assert seen[0].port == 1234 and seen[0].api_key == "file-key-SECRET-000"


def test_serve_reports_a_broken_file_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[serve]\nport = 1\nlisten = 2\n")
    result = cli(tmp_path, "--config", str(path), "serve")
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"error: {path}:3: unknown key 'serve.listen' (known: {', '.join(o.name for o in SERVE_OPTIONS)})\n"
    )
    result = cli(tmp_path, "--config", str(tmp_path / "nope.toml"), "serve")
    assert (
        result.exit_code == 1
        and result.stderr.startswith("error: config file")
        and "does not exist" in result.stderr
    )


def test_serve_help_names_every_env_variable(tmp_path: Path) -> None:
    result = cli(tmp_path, "serve", "--help")
    text = " ".join(result.stdout.split())
    for option in SERVE_OPTIONS:
        assert option.flag in text and f"Env: {option.env}" in text


def test_config_show_names_sources_and_redacts(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    result = cli(tmp_path, "--config", str(path), "config", "show", env={"CODEXGW_HOST": "0.0.0.0"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "SECRET" not in out
    lines = {
        line.split("#")[0].strip(): line.split("#", 1)[1].strip()
        for line in out.splitlines()
        if " = " in line
    }
    assert lines['host = "0.0.0.0"'] == "env CODEXGW_HOST"
    assert lines["port = 9000"] == f"file {path}:3"
    assert lines['api_key = "<redacted>"'] == f"file {path}:4"
    assert lines["retries = 3"] == "default"
    assert lines['fast = "gpt-5.4-mini-low"'] == f"file {path}:8"
    assert lines['codex-mini = "gpt-5.4-mini"'] == "built-in"
    doc = json.loads(cli(tmp_path, "--config", str(path), "config", "show", "--json").stdout)
    assert doc["settings"]["serve.api_key"] == {"value": "<redacted>", "source": f"file {path}:4"}
    assert doc["settings"]["serve.port"]["value"] == 9000
    assert doc["aliases"]["fast"]["target"] == "gpt-5.4-mini-low"
    assert doc["store"] == {"path": str(tmp_path / "store"), "source": "flag --store"}
    assert doc["config_file"] == {"path": str(path), "exists": True}


def test_default_config_path_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / "xdg" / "codexgw").mkdir(parents=True)
    (tmp_path / "xdg" / "codexgw" / "config.toml").write_text("[serve]\nport = 4321\n")
    result = cli(tmp_path, "config", "show", "--json")
    assert json.loads(result.stdout)["settings"]["serve.port"]["value"] == 4321
    assert cli(tmp_path, "config", "path").stdout.strip() == str(tmp_path / "xdg" / "codexgw" / "config.toml")


def test_repeatable_lists_from_flags_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--server-name`` and ``--allow-origin`` (issue 16): repeated flags, a comma list in the
    variable, a TOML array in the file; a string in the file is an error naming the key."""
    from codexgw.cli import serve as serve_module

    seen: list[Any] = []
    monkeypatch.setattr(serve_module, "run", seen.append)
    Store.open(tmp_path / "store")
    path = tmp_path / "config.toml"
    path.write_text('[serve]\nserver_name = ["gw.example.com", ".corp.example"]\n')
    flags = ["--allow-origin", "https://a.example", "--allow-origin", "https://b.example"]
    result = cli(tmp_path, "--config", str(path), "serve", *flags)
    assert result.exit_code == 0, result.output
    assert seen[0].server_names == ("gw.example.com", ".corp.example")
    assert seen[0].allow_origins == ("https://a.example", "https://b.example")
    seen.clear()
    env = {"CODEXGW_SERVER_NAME": "x.example, y.example", "CODEXGW_CONFIG": str(path)}
    result = cli(tmp_path, "serve", env=env)
    assert result.exit_code == 0, result.output
    assert seen[0].server_names == ("x.example", "y.example") and seen[0].allow_origins == ()
    path.write_text('[serve]\nallow_origin = "https://a.example"\n')
    result = cli(tmp_path, "--config", str(path), "serve")
    assert result.exit_code == 1
    assert "serve.allow_origin must be an array of strings, not a string" in result.stderr
    path.write_text('[serve]\nserver_name = ["gw.example.com"]\n')
    shown = cli(tmp_path, "--config", str(path), "config", "show")
    assert shown.exit_code == 0, shown.output
    assert 'server_name = ["gw.example.com"]' in shown.stdout and "allow_origin = []" in shown.stdout
