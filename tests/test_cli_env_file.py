"""Options that read HABITREWARD_* variables (``serve --host``: HABITREWARD_HOST) take them from
the env file too, as the settings do; the environment and the command line still win."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from habitreward.cli import cli


def test_serve_listens_where_the_env_file_says(serve, backend, tmp_path):
    if backend == "postgres":
        pytest.skip("reading the env file does not depend on the database (seen on SQLite)")
    (tmp_path / ".env").write_text("HABITREWARD_HOST=127.0.0.2\n")
    for args, env, host in [((), None, "127.0.0.2"), ((), {"HABITREWARD_HOST": "127.0.0.3"}, "127.0.0.3"),
                            (("--host", "127.0.0.4"), None, "127.0.0.4")]:
        server = serve(*args, env=env)
        assert server.url.startswith(f"http://{host}:")
        server.kill()  # one serve per SQLite file


@pytest.mark.no_db
def test_help_shows_the_env_files_value_as_the_default_and_a_bad_one_is_named(tmp_path):
    env_file = tmp_path / "settings.env"
    env_file.write_text("HABITREWARD_THREADS=3\n")
    shown = CliRunner().invoke(cli, ["--env-file", str(env_file), "serve", "--help"], env={"HABITREWARD_THREADS": None})
    assert shown.exit_code == 0
    assert "default: 3" in " ".join(shown.output.split("--threads", 1)[1].split()[:30])
    env_file.write_text("HABITREWARD_THREADS=many\n")
    refused = CliRunner().invoke(cli, ["--env-file", str(env_file), "serve", "--webhook"],
                                 env={"HABITREWARD_THREADS": None})
    assert refused.exit_code == 2
    assert "Invalid value for '--threads'" in refused.output and "HABITREWARD_THREADS" in refused.output


@pytest.mark.no_db
def test_plugin_variables_in_the_env_file_are_said_to_do_nothing(tmp_path):
    """HABITREWARD_LOAD_PLUGINS in .env, where every other setting works, was ignored without a
    word: the operator believed a plugin was off while it ran."""
    env_file = tmp_path / "settings.env"
    env_file.write_text("HABITREWARD_LOAD_PLUGINS=mood\nDATABASE_URL=sqlite:///x.db\n")
    listed = CliRunner().invoke(cli, ["--env-file", str(env_file), "plugins"],
                                env={"HABITREWARD_LOAD_PLUGINS": None, "HABITREWARD_EXTRA_PLUGINS": None})
    assert listed.exit_code == 0, listed.output
    assert listed.stderr == (f"Warning: {env_file} sets HABITREWARD_LOAD_PLUGINS, which is read from the environment"
                             " only (plugins load before the env file is read): it has no effect here; set it in the"
                             " environment (docs/configuration.md#plugins)\n")
    in_the_environment = CliRunner().invoke(cli, ["--env-file", str(env_file), "plugins"],
                                            env={"HABITREWARD_LOAD_PLUGINS": "", "HABITREWARD_EXTRA_PLUGINS": None})
    assert in_the_environment.exit_code == 0 and in_the_environment.stderr == ""


@pytest.mark.no_db
def test_a_mistyped_env_file_stops_the_command_before_it_opens_the_default_database(tmp_path, monkeypatch):
    # It was read as "no file": the command ran on sqlite:///habitreward.db, made afresh and
    # empty in the working directory ("No users yet."), with no token and no other setting.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prod.env").write_text("DATABASE_URL=sqlite:///bot.db\n")
    result = CliRunner().invoke(cli, ["--env-file", "prd.env", "users", "list"], env={"DATABASE_URL": None})
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == "Error: Invalid value for '--env-file': prd.env does not exist."
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prod.env"]
    # The default .env may be missing: settings then come from the environment alone.
    result = CliRunner().invoke(cli, ["--database-url", "sqlite:///bot.db", "users", "list"])
    assert result.exit_code == 0 and result.output == "No users yet.\n"
