"""A third-party plugin's exception: itself for the plugin's tests, one line naming the plugin for a
person at the command line, and a log line naming the plugin and the update in the bot."""

from __future__ import annotations

import importlib
import logging
import os
import re
import sys
import textwrap

import pytest
from click.testing import CliRunner

from habitreward.cli import cli
from habitreward.testing.botapi import BotApiStandIn
from habitreward.testing.driver import BotDriver

#: An installed plugin as its author wrote it: a hook and a bot command, both failing.
MOOD_PLUGIN = textwrap.dedent('''
    from telegram.ext import CommandHandler

    from habitreward import hookimpl


    @hookimpl
    def habitreward_habit_completed(engine, event):
        raise ValueError(f"no mood scale for {event.habit.name}")


    @hookimpl
    def habitreward_register_handlers(register, settings):
        async def mood(update, context):
            raise KeyError("no mood yet")

        register(CommandHandler("mood", mood))
''')


@pytest.fixture
def mood(tmp_path, monkeypatch):
    """The plugin as an importable module named ``mood``, which HABITREWARD_EXTRA_PLUGINS loads."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "mood.py").write_text(MOOD_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    monkeypatch.setenv("HABITREWARD_EXTRA_PLUGINS", "mood")
    yield
    sys.modules.pop("mood", None)


@pytest.fixture
def ann_runs(engine):
    engine.add_user(42, "Ann", active=True)
    engine.add_habit("Running")


def test_a_plugins_exception_is_one_line_naming_the_plugin_and_the_hook(mood, ann_runs, run, engine):
    result = run("done", "42", "Running")

    assert result.exit_code == 1
    assert result.stderr == ("Error: plugin 'mood' failed in habitreward_habit_completed: ValueError: no mood scale"
                             " for Running (-vv shows the traceback)\n")
    assert "Traceback" not in result.output
    assert engine.history(engine.get_user(42)) == []  # the completion was rolled back, as before


def test_minus_vv_shows_the_plugins_traceback_too(mood, ann_runs, run):
    result = run("-vv", "done", "42", "Running")

    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert 'raise ValueError(f"no mood scale for {event.habit.name}")' in result.stderr
    assert result.stderr.endswith("Error: plugin 'mood' failed in habitreward_habit_completed: ValueError: no mood"
                                  " scale for Running\n")


def test_the_plugins_own_tests_still_see_its_exception_with_a_note(mood, engine, ann_runs):
    engine.pm.register(importlib.import_module("mood"), name="mood")
    with pytest.raises(ValueError, match="no mood scale for Running") as raised:
        engine.complete(engine.get_user(42), engine.find_habit(None, "Running"))
    assert raised.value.__notes__ == ["habitreward: raised by the plugin 'mood' in habitreward_habit_completed"]


def test_the_engines_own_errors_stay_as_they_were(mood, ann_runs, run):
    result = run("done", "42", "Swimming")

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and "plugin" not in result.stderr


#: Two plugins adding commands: one fails halfway through (after adding `half`), the other works.
BROKEN_COMMANDS_PLUGIN = textwrap.dedent('''
    import click

    from habitreward import hookimpl

    @hookimpl
    def habitreward_register_commands(cli):
        @cli.command()
        def half():
            click.echo("half there")

        raise RuntimeError("click is too old for me")
''')
MOOD_COMMANDS_PLUGIN = textwrap.dedent('''
    import click

    from habitreward import hookimpl

    def scale(name):
        return {"calm": 1}[name]

    @hookimpl
    def habitreward_register_commands(cli):
        @cli.command("mood-scale")
        @click.argument("name")
        def mood_scale(name):
            click.echo(scale(name))
''')


@pytest.fixture
def command_plugins(tmp_path, monkeypatch, db_url):
    """``main``, the console script, with both plugins loaded (their commands added afresh for
    each run and taken off the shared ``cli`` afterwards); returns (exit code, stdout, stderr)."""
    from habitreward.cli import app, main

    for name, text in (("broken_commands", BROKEN_COMMANDS_PLUGIN), ("mood_commands", MOOD_COMMANDS_PLUGIN)):
        (tmp_path / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HABITREWARD_LOAD_PLUGINS", "")
    monkeypatch.setenv("HABITREWARD_EXTRA_PLUGINS", "broken_commands,mood_commands")
    built_in = dict(cli.commands)

    def run_main(capsys, *args: str) -> tuple[int, str, str]:
        # As in a process of its own: the plugins add their commands again.
        monkeypatch.setattr(app, "_plugins_registered", False)
        monkeypatch.setattr(app, "_command_plugins", None)
        monkeypatch.setattr(cli, "commands", dict(built_in))
        with pytest.raises(SystemExit) as exited:
            main(["--env-file", os.devnull, "--database-url", db_url, *args])
        out, err = capsys.readouterr()
        return exited.value.code, out, err

    yield run_main
    for name in ("broken_commands", "mood_commands"):
        sys.modules.pop(name, None)


WARNING = ("Warning: plugin 'broken_commands' failed in habitreward_register_commands: RuntimeError: click is too"
           " old for me; its commands are not available")


def test_a_plugin_failing_to_add_its_commands_leaves_every_other_command_usable(command_plugins, capsys):
    """It used to stop every command with that line, `habitreward plugins` too, which is where one
    looks to find out about it."""
    code, out, err = command_plugins(capsys, "plugins")
    assert code == 0
    assert err == WARNING + " (-vv shows the traceback)\n"
    assert "broken_commands" in out and "habitreward_register_commands" in out
    assert "mood_commands" in out


def test_the_other_plugins_commands_work_and_the_failing_ones_are_left_out(command_plugins, capsys):
    code, out, err = command_plugins(capsys, "mood-scale", "calm")
    assert (code, out) == (0, "1\n")
    assert err.startswith(WARNING)

    code, out, err = command_plugins(capsys, "--help")
    assert code == 0 and "mood-scale" in out and "plugins" in out
    assert "half" not in out.split()  # added before its hook raised: left out with the rest
    assert err.startswith(WARNING)

    code, out, err = command_plugins(capsys, "half")
    assert code == 2 and "No such command 'half'" in err


def test_minus_vv_shows_the_traceback_of_a_plugin_failing_to_add_its_commands(command_plugins, capsys):
    code, out, err = command_plugins(capsys, "-vv", "plugins")
    assert code == 0
    assert "Traceback (most recent call last)" in err
    assert 'raise RuntimeError("click is too old for me")' in err
    assert WARNING + "\n" in err and "(-vv shows the traceback)" not in err


def test_a_plugins_own_command_failing_is_one_line_naming_the_plugin(command_plugins, capsys):
    """The exception comes from the plugin's code, not from a hook call: it used to reach the
    person as a raw traceback."""
    code, out, err = command_plugins(capsys, "mood-scale", "sad")
    assert code == 1
    assert err.endswith("Error: plugin 'mood_commands' failed in the command 'mood-scale': KeyError: 'sad'"
                        " (-vv shows the traceback)\n")
    assert "Traceback" not in err

    code, out, err = command_plugins(capsys, "-vv", "mood-scale", "sad")
    assert code == 1
    assert "Traceback (most recent call last)" in err and 'return {"calm": 1}[name]' in err
    assert err.endswith("Error: plugin 'mood_commands' failed in the command 'mood-scale': KeyError: 'sad'\n")


def test_chat_names_the_plugin_in_one_line_and_exits_with_1(mood, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HABITREWARD_LOAD_PLUGINS", "")
    result = CliRunner().invoke(cli, ["--env-file", os.devnull, "--database-url",
                                      f"sqlite:///{tmp_path / 'chat.db'}", "chat", "--demo"],
                                input="Running\n/mood\n/quit\n")

    assert result.exit_code == 1
    assert "(the bot ran into an error: plugin 'mood' failed in habitreward_habit_completed: ValueError: no mood" \
           " scale for Running (-vv shows the traceback))" in result.stderr
    assert "(the bot ran into an error: plugin 'mood' failed in a handler it registered: KeyError: 'no mood yet'" \
           in result.stderr
    assert "Traceback" not in result.output
    assert result.stderr.endswith("Error: a plugin failed on 2 update(s) during this chat (see above)\n")


def test_chat_exits_with_1_after_a_hook_answered_what_it_may_not(tmp_path, monkeypatch):
    """A hook answering a str where an Award belongs fails the completion with PluginError: the
    plugin failed as surely as by raising, and a scripted chat is told so by its exit code."""
    (tmp_path / "bonus_words.py").write_text(textwrap.dedent("""
        from habitreward import hookimpl


        @hookimpl
        def habitreward_habit_completed(engine, event):
            return "bonus!"
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HABITREWARD_LOAD_PLUGINS", "")
    monkeypatch.setenv("HABITREWARD_EXTRA_PLUGINS", "bonus_words")
    result = CliRunner().invoke(cli, ["--env-file", os.devnull, "--database-url",
                                      f"sqlite:///{tmp_path / 'chat.db'}", "chat", "--demo"],
                                input="Running\n/quit\n")
    sys.modules.pop("bonus_words", None)

    assert "(the bot ran into an error: habitreward_habit_completed answered 'bonus!' (plugin 'bonus_words'):" \
           " an Award, a list of Awards or None)" in result.stderr
    assert result.stderr.endswith("Error: a plugin failed on 1 update(s) during this chat (see above)\n")
    assert result.exit_code == 1


def test_the_bot_logs_the_update_and_the_plugin(mood, engine, ann_runs, caplog):
    engine.pm.register(importlib.import_module("mood"), name="mood")
    caplog.set_level(logging.ERROR, logger="habitreward.bot.app")
    with BotApiStandIn() as api, BotDriver(engine, api, raise_errors=False) as bot:
        bot.send(42, "Running")
        bot.send(42, "/mood")

    logged = [(r.getMessage(), r.exc_info[0]) for r in caplog.records if r.name == "habitreward.bot.app"]
    assert [error for _, error in logged] == [ValueError, KeyError]  # each with its traceback
    hook, handler = (re.fullmatch(r"update (\d+) \(user 42\): a handler failed: (.*)", m) for m, _ in logged)
    assert hook[2] == "plugin 'mood' failed in habitreward_habit_completed: ValueError: no mood scale for Running"
    assert handler[2] == "plugin 'mood' failed in a handler it registered: KeyError: 'no mood yet'"
    assert hook[1] != handler[1]  # the update ids, which tell the two apart in the inbox


def test_a_wrapper_among_the_hooks_still_leaves_the_failing_plugin_named(mood, engine, ann_runs):
    from habitreward import hookimpl

    class Timing:  # a wrapper: pluggy calls the implementations, not the engine one by one
        @hookimpl(wrapper=True)
        def habitreward_habit_completed(self, engine, event):
            return (yield)

    engine.pm.register(Timing(), name="timing")
    engine.pm.register(importlib.import_module("mood"), name="mood")
    with pytest.raises(ValueError) as raised:
        engine.complete(engine.get_user(42), engine.find_habit(None, "Running"))
    assert raised.value.__notes__ == ["habitreward: raised by the plugin 'mood' in habitreward_habit_completed"]


def _a_built_in_plugins_breaks(monkeypatch, when=lambda: True):
    """The built-in streak rule raising, as habitreward's own bug would."""
    import habitreward.plugins.streaks as streaks

    def broken(*args):
        if when():
            raise ZeroDivisionError("the streak rule's own bug")
        return 1

    monkeypatch.setattr(streaks, "next_streak", broken)


def test_a_built_in_plugins_bug_under_a_plugins_wrapper_is_not_blamed_on_that_plugin(engine, ann_runs, caplog,
                                                                                   monkeypatch):
    from habitreward import hookimpl

    class Timing:  # wraps every streak computation, and does nothing wrong
        @hookimpl(wrapper=True)
        def habitreward_compute_streak(self, habit, day, previous_day, previous_streak):
            return (yield)

    engine.pm.register(Timing(), name="timing")
    _a_built_in_plugins_breaks(monkeypatch)
    caplog.set_level(logging.ERROR, logger="habitreward.bot.app")
    with BotApiStandIn() as api, BotDriver(engine, api, raise_errors=False) as bot:
        bot.send(42, "Running")

    [logged] = [r for r in caplog.records if r.name == "habitreward.bot.app"]
    assert re.fullmatch(r"update \d+ \(user 42\): a handler failed: ZeroDivisionError: the streak rule's own bug",
                        logged.getMessage())
    assert logged.exc_info[0] is ZeroDivisionError


def test_a_plugin_calling_the_engine_is_not_blamed_for_a_built_in_plugins_bug(tmp_path, monkeypatch, ann_runs,
                                                                              run):
    (tmp_path / "coach.py").write_text(textwrap.dedent('''
        from habitreward import hookimpl

        calling = False

        @hookimpl
        def habitreward_habit_completed(engine, event):
            global calling
            calling = True  # the odds of tomorrow, for a tip
            try:
                engine.odds(event.user, event.habit)
            finally:
                calling = False
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HABITREWARD_EXTRA_PLUGINS", "coach")
    try:
        _a_built_in_plugins_breaks(monkeypatch, when=lambda: sys.modules["coach"].calling)
        result = run("done", "42", "Running")
    finally:
        sys.modules.pop("coach", None)

    assert "plugin" not in result.output
    assert isinstance(result.exception, ZeroDivisionError)  # a traceback, as any bug of habitreward's
    assert not getattr(result.exception, "__notes__", None)


def test_a_plugins_exception_that_cannot_be_printed_is_still_one_line(tmp_path, monkeypatch, ann_runs, run):
    (tmp_path / "shy.py").write_text(textwrap.dedent('''
        from habitreward import hookimpl

        class ShyError(Exception):
            def __str__(self):
                raise RuntimeError("not telling")

        @hookimpl
        def habitreward_habit_completed(engine, event):
            raise ShyError()
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HABITREWARD_EXTRA_PLUGINS", "shy")
    try:
        result = run("done", "42", "Running")
    finally:
        sys.modules.pop("shy", None)

    assert result.exit_code == 1
    assert result.stderr == ("Error: plugin 'shy' failed in habitreward_habit_completed: ShyError: <exception str()"
                             " failed> (-vv shows the traceback)\n")


def test_a_refused_answer_under_a_plugins_wrapper_is_not_blamed_on_the_wrapper(tmp_path, monkeypatch):
    """The weights are checked under the wrapper (pluggy calls the implementations, and the check
    raises there): the error names the plugin that answered, not the wrapper as failing."""
    (tmp_path / "bonus_out.py").write_text(textwrap.dedent('''
        from habitreward import hookimpl


        @hookimpl(wrapper=True)
        def habitreward_weigh_rewards():
            weighted = yield
            return [c.with_weight(0) if c.reward.name == "Bonus" else c for c in weighted]
    '''))
    (tmp_path / "skewed.py").write_text(textwrap.dedent('''
        from habitreward import hookimpl


        @hookimpl
        def habitreward_weigh_rewards(candidates):
            return [c.with_weight(-1.0) for c in candidates]
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HABITREWARD_LOAD_PLUGINS", "")
    monkeypatch.setenv("HABITREWARD_EXTRA_PLUGINS", "bonus_out,skewed")
    try:
        result = CliRunner().invoke(cli, ["--env-file", os.devnull, "--database-url",
                                          f"sqlite:///{tmp_path / 'chat.db'}", "chat", "--demo"],
                                    input="Running\n/quit\n")
    finally:
        sys.modules.pop("bonus_out", None)
        sys.modules.pop("skewed", None)

    assert "(the bot ran into an error: habitreward_weigh_rewards answered the weight -1.0 (plugin 'skewed'): a" \
           " weight is a finite number from 0)" in result.stderr
    assert "bonus_out" not in result.stderr
    assert result.exit_code == 1
