"""litellm is heavy and may touch the network at import: it is only imported when an LLM call is made.
Nor does ``habitreward --help`` import the bot's libraries."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.no_db


def _modules_after(code: str) -> set[str]:
    script = textwrap.dedent(code) + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))\n"
    env = {"PATH": "/usr/bin:/bin", "HABITREWARD_LOAD_PLUGINS": ""}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def test_help_does_not_import_litellm():
    modules = _modules_after("""
        from habitreward.cli import main
        try:
            main(["--help"])  # what the console script runs
        except SystemExit as exit:
            assert not exit.code
    """)
    assert "habitreward.cli.nlp" in modules  # the command module was loaded...
    assert "litellm" not in modules  # ...without litellm
    assert "openai" not in modules
    assert "snowballstemmer" not in modules and "rapidfuzz" not in modules  # loaded at the first message
    # Nor the bot's and the server's libraries: the built-in plugin habitreward.bot.state loads with
    # every command, and its package must not import python-telegram-bot for that.
    assert not {"telegram", "waitress", "aiohttp"} & {name.split(".")[0] for name in modules}


def test_matching_without_an_llm_does_not_import_litellm(tmp_path):
    modules = _modules_after(f"""
        from habitreward.testing.engines import make_engine
        engine = make_engine("sqlite:///{tmp_path / 'x.db'}", load_entry_points=False)
        user, _ = engine.register(1, "Ann")
        engine.add_habit("Yoga")
        result = engine.hooks.match_habits(user, "hello there", engine.habits_for(user))
        assert result is not None and not result.confident
        result = engine.hooks.match_habits(user, "yoga", engine.habits_for(user))
        assert result.confident
    """)
    assert "litellm" not in modules


def test_configured_llm_is_imported_only_when_called(tmp_path):
    modules = _modules_after(f"""
        from habitreward.testing.engines import make_engine
        engine = make_engine("sqlite:///{tmp_path / 'x.db'}", load_entry_points=False, llm_model="openai/x",
                             llm_api_base="http://127.0.0.1:9/v1")
        user, _ = engine.register(1, "Ann")
        engine.add_habit("Yoga")
        assert engine.hooks.match_habits(user, "yoga", engine.habits_for(user)).confident  # settled locally
    """)
    assert "litellm" not in modules


def test_the_console_script_help_with_import_time_trace(tmp_path):
    script = Path(sys.executable).parent / "habitreward"
    if not script.exists():
        pytest.skip("the console script is not installed next to this Python")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(script), "--help"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: habitreward" in done.stdout
    assert "habitreward.cli.nlp" in done.stderr  # the trace lists every import...
    assert "litellm" not in done.stderr  # ...and litellm is not one of them


def test_the_bot_handling_free_text_without_an_llm_does_not_import_litellm(tmp_path):
    modules = _modules_after(f"""
        import habitreward.server.service  # what `habitreward serve` runs
        from habitreward.testing.botapi import BotApiStandIn
        from habitreward.testing.driver import BotDriver
        from habitreward.testing.engines import make_engine
        engine = make_engine("sqlite:///{tmp_path / 'x.db'}", load_entry_points=False)
        ann = engine.add_user(2, "Ann", active=True)
        engine.add_habit("Yoga", owner=ann)
        with BotApiStandIn() as api:
            bot = BotDriver(engine, api).start()
            try:
                assert "Yoga" in bot.send(2, "did yoga").text
                assert "I could not tell" in bot.send(2, "hello there").text
            finally:
                bot.stop()
    """)
    assert "habitreward.bot.handlers.completion" in modules
    assert "litellm" not in modules
