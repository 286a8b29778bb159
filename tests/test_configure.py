"""``codexgw configure codex``: edits Codex's config.toml in place, keeping everything else."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from codexgw.cli.configure import ConfigError, configure, edit_codex_config

EXISTING = """\
# my Codex settings
model = "gpt-5.4"   # the one I like
approval_policy = "on-request"

[features]
plugins = false   # keep this comment

# an old provider I still use
[model_providers.other]
name = "Other"
base_url = "https://example.invalid/v1"

[profiles.fast]
model = "gpt-5.4-mini"
notes = '''
[model_providers.codexgw]
not a table, just text
'''
"""


def run(home: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(
        configure, ["codex", "--codex-home", str(home), *args], env={"CODEXGW_API_KEY": "", **(env or {})}
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_existing_config_keeps_comments_and_other_keys_and_writes_a_backup(tmp_path: Path) -> None:
    """The provider block is added; every other byte of the file stays; a backup holds the old file."""
    (tmp_path / "config.toml").write_text(EXISTING)
    out = run(tmp_path, "--base-url", "http://127.0.0.1:9000/v1")
    text = (tmp_path / "config.toml").read_text()
    assert text.startswith('# my Codex settings\nmodel = "gpt-5.4"   # the one I like\n')
    assert 'model_provider = "codexgw"\n' in text
    assert "plugins = false   # keep this comment\n" in text
    assert "# an old provider I still use\n[model_providers.other]\n" in text
    assert "not a table, just text" in text
    data = tomllib.loads(text)
    assert data["model"] == "gpt-5.4"
    assert data["model_provider"] == "codexgw"
    assert data["model_providers"]["codexgw"] == {
        "name": "codexgw",
        "base_url": "http://127.0.0.1:9000/v1",
        "wire_api": "responses",
        "supports_websockets": True,
    }
    assert data["model_providers"]["other"]["name"] == "Other"
    assert data["profiles"]["fast"]["notes"].startswith("[model_providers.codexgw]")
    removed = [line for line in EXISTING.splitlines() if line not in text.splitlines()]
    assert removed == []
    (backup,) = tmp_path.glob("config.toml.bak-*")
    assert backup.read_text() == EXISTING
    assert "added [model_providers.codexgw]" in out
    assert 'codex exec --skip-git-repo-check "say hi"' in out
    assert f"CODEX_HOME={tmp_path}" in out


def test_a_replaced_value_keeps_its_comment(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(EXISTING)
    run(tmp_path, "--model", "gpt-5.5")
    assert 'model = "gpt-5.5"   # the one I like\n' in (tmp_path / "config.toml").read_text()


def test_second_run_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(EXISTING)
    run(tmp_path)
    first = (tmp_path / "config.toml").read_text()
    out = run(tmp_path)
    assert "nothing changed" in out
    assert (tmp_path / "config.toml").read_text() == first
    assert len(list(tmp_path.glob("config.toml.bak-*"))) == 1


def test_existing_provider_block_is_updated_in_place(tmp_path: Path) -> None:
    """Managed keys are rewritten where they are; the block's own extra keys stay."""
    (tmp_path / "config.toml").write_text(
        'model_provider = "openai"\n\n[model_providers.codexgw]\nname = "My gateway"\n'
        'base_url = "http://127.0.0.1:8080/v1"  # old port\nstream_max_retries = 2\n\n[tui]\ntheme = "dark"\n'
    )
    out = run(tmp_path, "--base-url", "http://127.0.0.1:8123/v1/", "--model", "gpt-5.5", "--env-key")
    text = (tmp_path / "config.toml").read_text()
    data = tomllib.loads(text)
    assert data["model_provider"] == "codexgw" and data["model"] == "gpt-5.5"
    assert data["model_providers"]["codexgw"] == {
        "name": "My gateway",
        "base_url": "http://127.0.0.1:8123/v1",
        "wire_api": "responses",
        "supports_websockets": True,
        "env_key": "CODEXGW_API_KEY",
        "stream_max_retries": 2,
    }
    assert data["tui"] == {"theme": "dark"}
    assert text.index("env_key") < text.index("[tui]")
    assert 'set model_provider = "codexgw" (was "openai")' in out
    assert "CODEXGW_API_KEY=<gateway key>" in out


def test_env_key_follows_the_environment_and_can_be_removed(tmp_path: Path) -> None:
    run(tmp_path, env={"CODEXGW_API_KEY": "secret"})
    data = tomllib.loads((tmp_path / "config.toml").read_text())
    assert data["model_providers"]["codexgw"]["env_key"] == "CODEXGW_API_KEY"
    run(tmp_path)  # no key in the environment: an existing env_key is left alone
    assert "env_key" in tomllib.loads((tmp_path / "config.toml").read_text())["model_providers"]["codexgw"]
    run(tmp_path, "--no-env-key")
    assert (
        "env_key" not in tomllib.loads((tmp_path / "config.toml").read_text())["model_providers"]["codexgw"]
    )


def test_new_config_is_created_0600(tmp_path: Path) -> None:
    home = tmp_path / "codex-home"
    run(home, "--create")
    path = home / "config.toml"
    assert path.stat().st_mode & 0o777 == 0o600
    assert tomllib.loads(path.read_text())["model_providers"]["codexgw"]["wire_api"] == "responses"
    assert list(home.glob("config.toml.bak-*")) == []


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(EXISTING)
    out = run(tmp_path, "--dry-run")
    assert "Would update" in out
    assert (tmp_path / "config.toml").read_text() == EXISTING


@pytest.mark.parametrize(
    "text",
    [
        "model_providers = { codexgw = { name = 'x', base_url = 'http://h/v1' } }\n",
        "model_providers.codexgw.base_url = 'http://h/v1'\n",
        "this is = = not toml\n",
    ],
)
def test_layouts_it_cannot_edit_safely_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        edit_codex_config(
            text, provider="codexgw", base_url="http://127.0.0.1:8080/v1", model=None, env_key=None
        )


def test_refusal_leaves_the_file_alone(tmp_path: Path) -> None:
    text = "model_providers.codexgw.base_url = 'http://h/v1'\n"
    (tmp_path / "config.toml").write_text(text)
    result = CliRunner().invoke(configure, ["codex", "--codex-home", str(tmp_path)])
    assert result.exit_code == 1
    assert "edit it by hand" in result.output
    assert (tmp_path / "config.toml").read_text() == text


def test_a_codex_home_that_does_not_exist_asks_for_create(tmp_path: Path) -> None:
    home = tmp_path / "typo"
    result = CliRunner().invoke(configure, ["codex", "--codex-home", str(home)])
    assert result.exit_code == 1
    assert result.output.startswith(f"error: {home} does not exist (--codex-home); pass --create")
    assert not home.exists()
    created = run(home, "--create", "--model", "gpt-5.5")
    assert created.startswith(f"Created {home / 'config.toml'}:")


def test_dry_run_of_a_new_file_says_would_create_and_lists_env_key(tmp_path: Path) -> None:
    out = run(tmp_path, "--dry-run", "--base-url", "http://10.0.0.5:8080/v1")
    assert out.startswith(f"Would create {tmp_path / 'config.toml'}:")
    assert 'env_key = "CODEXGW_API_KEY"' in out
    assert 'wire_api = "responses"' in out
    assert not (tmp_path / "config.toml").exists()


def test_it_prints_the_model_and_warns_when_codex_would_pick_its_own(tmp_path: Path) -> None:
    chosen = CliRunner().invoke(configure, ["codex", "--codex-home", str(tmp_path), "--model", "gpt-5.5"])
    assert chosen.exit_code == 0 and "Model: gpt-5.5 (set now)" in chosen.stdout
    assert "warning" not in chosen.stderr
    again = CliRunner().invoke(configure, ["codex", "--codex-home", str(tmp_path)])
    assert "Model: gpt-5.5 (already in config.toml)" in again.stdout and "warning" not in again.stderr
    other = tmp_path / "other"
    other.mkdir()
    unset = CliRunner().invoke(configure, ["codex", "--codex-home", str(other)])
    assert unset.exit_code == 0
    assert unset.stderr.startswith("warning: no model is set, so Codex asks for its own default model")
    assert "--model gpt-5.5" in unset.stderr
    odd = CliRunner().invoke(configure, ["codex", "--codex-home", str(other), "--model", "o3"])
    assert "Model: o3 (set now)" in odd.stdout
    assert "warning: o3 is not a model ChatGPT accounts are known to serve" in odd.stderr


def test_supports_websockets_is_set_and_an_existing_false_is_turned_on(tmp_path: Path) -> None:
    """codexgw serves the Responses WebSocket, so the provider says ``supports_websockets = true``
    (a ``false`` written before is changed, with its line's comment kept)."""
    (tmp_path / "config.toml").write_text(
        '[model_providers.codexgw]\nname = "codexgw"\nsupports_websockets = false  # was 426\n'
    )
    out = run(tmp_path)
    text = (tmp_path / "config.toml").read_text()
    assert "supports_websockets = true  # was 426\n" in text
    assert tomllib.loads(text)["model_providers"]["codexgw"]["supports_websockets"] is True
    assert "set supports_websockets = true (was false)" in out
