"""Loading plugins: whatever goes wrong is one line that says which plugin and what to do."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

from habitreward.errors import ConfigError
from habitreward.plugins import make_plugin_manager

pytestmark = pytest.mark.no_db


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """Write importable modules: ``modules(name=source, ...)``."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(**sources: str) -> None:
        for name, source in sources.items():
            (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
            sys.modules.pop(name, None)

    yield write


def install_package(tmp_path, monkeypatch, module: str, entry_point: str, source: str) -> None:
    """An installed package as pip leaves one: ``module``, and a dist-info naming ``entry_point``
    ("name = module[:object]") in habitreward's entry-point group, importable from ``tmp_path``."""
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    info = tmp_path / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[habitreward]\n{entry_point}\n")
    monkeypatch.syspath_prepend(str(tmp_path))


#: A plugin with one hook that does nothing: a working plugin, as `habitreward plugins` lists it.
COMMANDS_PLUGIN = """
    from habitreward import hookimpl

    @hookimpl
    def habitreward_register_commands(cli):
        pass
"""


def plugins_command(extra_plugins: str, *args: str):
    """`habitreward plugins ARGS` with no installed plugin and HABITREWARD_EXTRA_PLUGINS=extra_plugins."""
    from click.testing import CliRunner

    from habitreward.cli import cli

    return CliRunner().invoke(cli, ["--env-file", os.devnull, "plugins", *args],
                              env={"HABITREWARD_LOAD_PLUGINS": "", "HABITREWARD_EXTRA_PLUGINS": extra_plugins})


def test_a_name_in_load_plugins_that_nothing_provides_is_an_error():
    with pytest.raises(ConfigError, match=r"HABITREWARD_LOAD_PLUGINS names jornal, which no installed package"
                                          r" provides \(installed: "):
        make_plugin_manager(environ={"HABITREWARD_LOAD_PLUGINS": "jornal"})


def test_an_extra_plugin_that_fails_while_importing_is_one_line(modules):
    modules(broken="raise RuntimeError('boom at import')\n")
    with pytest.raises(ConfigError, match=r"HABITREWARD_EXTRA_PLUGINS: cannot import 'broken' \(RuntimeError: boom"):
        make_plugin_manager(environ={"HABITREWARD_LOAD_PLUGINS": "", "HABITREWARD_EXTRA_PLUGINS": "broken"})


def test_a_misspelled_hook_is_one_line(modules):
    modules(typo="""
        from habitreward import hookimpl

        @hookimpl
        def habitreward_habit_complete(engine, event):
            pass
    """)
    with pytest.raises(ConfigError) as refused:
        make_plugin_manager(environ={"HABITREWARD_LOAD_PLUGINS": "", "HABITREWARD_EXTRA_PLUGINS": "typo"})
    assert str(refused.value) == (
        "HABITREWARD_EXTRA_PLUGINS: the plugin 'typo' does not fit: 'habitreward_habit_complete' is no hook"
        " (did you mean 'habitreward_habit_completed'?) (the hooks: docs/plugins.md)")


def test_a_misspelled_hook_of_an_installed_plugin_is_one_line_naming_its_entry_point(tmp_path, monkeypatch):
    """An installed package (a dist-info with an entry point) whose hook name is misspelled."""
    install_package(tmp_path, monkeypatch, "typo_pkg", "typo = typo_pkg", """
        from habitreward import hookimpl

        @hookimpl
        def habitreward_compute_streaks(habit, day):
            return 1
    """)
    with pytest.raises(ConfigError) as refused:
        make_plugin_manager(environ={"HABITREWARD_LOAD_PLUGINS": "typo"})
    assert str(refused.value) == (
        "The habitreward plugin 'typo' does not fit: 'habitreward_compute_streaks' is no hook (did you mean"
        " 'habitreward_compute_streak'?) (the hooks: docs/plugins.md); to run without it, set"
        " HABITREWARD_LOAD_PLUGINS=")


def _hand_registered(source: str, modules) -> tuple[object, object]:
    """A plugin module registered by hand, as docs/plugins.md's and testing-plugins.md's tests do."""
    import importlib

    modules(by_hand=source)
    pm = make_plugin_manager(load_entry_points=False)
    return pm, importlib.import_module("by_hand")


def test_a_plugin_registered_by_hand_with_a_misspelled_hook_is_refused_there(modules):
    """A plugin's test registers it with engine.pm.register and never calls check_pending: a
    misspelled hook was accepted, and the rule silently never ran (the test failing for no
    reason the author could see)."""
    import pluggy

    pm, module = _hand_registered("""
        from habitreward import hookimpl

        @hookimpl
        def habitreward_odds_multipler(habit, streak):
            return 2.0
    """, modules)
    before = pm.get_plugins()
    with pytest.raises(pluggy.PluginValidationError, match=r"^the plugin 'by_hand' does not fit:"
                       r" 'habitreward_odds_multipler' is no hook \(did you mean 'habitreward_odds_multiplier'\?\)"):
        pm.register(module)
    assert pm.get_plugins() == before  # nothing of it registered


def test_a_hook_function_without_hookimpl_is_refused(modules):
    """pluggy skips an unmarked function without a word: the author's rule never ran."""
    import pluggy

    pm, module = _hand_registered("""
        def habitreward_odds_multiplier(habit, streak):
            return 2.0
    """, modules)
    with pytest.raises(pluggy.PluginValidationError, match=r"the plugin 'rules' does not fit:"
                       r" habitreward_odds_multiplier is not marked @hookimpl \(from habitreward import hookimpl\)"):
        pm.register(module, name="rules")
    assert not pm.has_plugin("rules")


def test_a_hook_argument_the_hook_does_not_have_is_one_line_naming_the_plugin(modules):
    modules(badargs="""
        from habitreward import hookimpl

        @hookimpl
        def habitreward_odds_multiplier(habit, streaks):
            return None
    """)
    with pytest.raises(ConfigError) as refused:
        make_plugin_manager(environ={"HABITREWARD_LOAD_PLUGINS": "", "HABITREWARD_EXTRA_PLUGINS": "badargs"})
    message = str(refused.value)
    assert message == ("HABITREWARD_EXTRA_PLUGINS: the plugin 'badargs' does not fit:"
                       " habitreward_odds_multiplier(habit, streaks): no argument 'streaks' (did you mean 'streak'?);"
                       " the hook's arguments are habit, streak, settings, user, day (take any of them, by name)")
    assert "\n" not in message


def test_a_plugin_named_twice_is_loaded_once(modules):
    modules(twice="""
        from habitreward import hookimpl

        @hookimpl
        def habitreward_register_commands(cli):
            pass
    """)
    pm = make_plugin_manager(environ={"HABITREWARD_LOAD_PLUGINS": "", "HABITREWARD_EXTRA_PLUGINS": "twice, twice"})
    assert [pm.get_name(p) for p in pm.get_plugins()].count("twice") == 1


def test_two_plugins_with_one_migration_namespace_are_named(tmp_path):
    from habitreward.schema import MigrationSource, status

    with pytest.raises(ConfigError, match=r"two sources of migrations use the namespace 'journal' \(.*a and .*b\)"):
        status(None, [MigrationSource("journal", tmp_path / "a"), MigrationSource("journal", tmp_path / "b")])


def test_a_plugin_installed_and_named_in_extra_plugins_too_is_loaded_once():
    pytest.importorskip("habitreward_perfect_day", reason="pip install -e plugins/perfect-day")
    pm = make_plugin_manager(environ={"HABITREWARD_LOAD_PLUGINS": "perfect_day",
                                      "HABITREWARD_EXTRA_PLUGINS": "habitreward_perfect_day"})
    import habitreward_perfect_day

    assert sum(plugin is habitreward_perfect_day for plugin in pm.get_plugins()) == 1


def test_plugins_lists_an_extra_plugin_as_such_not_as_built_in(modules, monkeypatch):
    modules(local_rules=COMMANDS_PLUGIN)
    listed = plugins_command("local_rules")
    assert listed.exit_code == 0, listed.output
    line = next(line for line in listed.output.splitlines() if line.startswith("local_rules"))
    assert "(HABITREWARD_EXTRA_PLUGINS)" in line and "(built in)" not in line


@pytest.mark.parametrize(("first", "answer"), [(None, 5.0), ("a_rule", 3.0)])
def test_between_plugins_tryfirst_is_asked_first_else_the_one_loaded_last(modules, first, answer):
    """As plugins.md says: without tryfirst the plugin loaded last answers a first-answer hook."""
    for name, value in (("a_rule", 3.0), ("b_rule", 5.0)):
        marker = "tryfirst=True" if name == first else ""
        modules(**{name: f"""
            from habitreward import hookimpl

            @hookimpl({marker})
            def habitreward_odds_multiplier(habit):
                return {value}
        """})
    pm = make_plugin_manager(environ={"HABITREWARD_LOAD_PLUGINS": "", "HABITREWARD_EXTRA_PLUGINS": "a_rule,b_rule"})
    assert pm.hook.habitreward_odds_multiplier(habit=None, streak=1, settings=None, user=None, day=None) == answer


_A_CLASS_PLUGIN = """
    from habitreward import hookimpl

    class Weekend:
        @hookimpl
        def habitreward_odds_multiplier(self, habit):
            return 2.0

    plugin = Weekend()
"""
_A_CLASS_GIVEN = ("it is the class Weekend, not an instance, and its hooks (habitreward_odds_multiplier) are"
                  " methods that need one: register an instance, Weekend(), or a module (for an entry point:"
                  " 'package.module:plugin', with plugin = Weekend() in that module)")


def test_an_entry_point_naming_a_class_says_to_name_an_instance(tmp_path, monkeypatch):
    """Loaded, a class's hook method took the habit for ``self`` and failed at the first completion
    (TypeError: missing 1 required positional argument: 'habit'); now loading says what to do."""
    install_package(tmp_path, monkeypatch, "weekend_pkg", "weekend = weekend_pkg:Weekend", _A_CLASS_PLUGIN)
    with pytest.raises(ConfigError) as refused:
        make_plugin_manager(environ={"HABITREWARD_LOAD_PLUGINS": "weekend"})
    assert str(refused.value) == (f"The habitreward plugin 'weekend' does not fit: {_A_CLASS_GIVEN};"
                                  " to run without it, set HABITREWARD_LOAD_PLUGINS=")

    entry_points = tmp_path / "weekend_pkg-0.1.dist-info" / "entry_points.txt"
    entry_points.write_text("[habitreward]\nweekend = weekend_pkg:plugin\n")  # as it says
    pm = make_plugin_manager(environ={"HABITREWARD_LOAD_PLUGINS": "weekend"})
    assert pm.hook.habitreward_odds_multiplier(habit=None, streak=1, settings=None, user=None, day=None) == 2.0


def test_a_class_registered_by_hand_says_to_register_an_instance(modules):
    import pluggy

    pm, module = _hand_registered(_A_CLASS_PLUGIN, modules)
    before = pm.get_plugins()
    with pytest.raises(pluggy.PluginValidationError) as refused:
        pm.register(module.Weekend)
    assert str(refused.value) == f"the plugin 'Weekend' does not fit: {_A_CLASS_GIVEN}"
    assert pm.get_plugins() == before
    pm.register(module.Weekend())
    assert pm.hook.habitreward_odds_multiplier(habit=None, streak=1, settings=None, user=None, day=None) == 2.0


def test_a_class_of_static_hooks_is_still_a_plugin(modules):
    """A class whose hooks need no instance (staticmethods) works as it is: no refusal."""
    pm, module = _hand_registered("""
        from habitreward import hookimpl

        class Rules:
            @staticmethod
            @hookimpl
            def habitreward_odds_multiplier(habit):
                return 3.0
    """, modules)
    pm.register(module.Rules)
    assert pm.hook.habitreward_odds_multiplier(habit=None, streak=1, settings=None, user=None, day=None) == 3.0


def test_extra_plugins_naming_a_class_says_it_names_modules(modules):
    modules(weekend_rules=_A_CLASS_PLUGIN)
    with pytest.raises(ConfigError) as refused:
        make_plugin_manager(environ={"HABITREWARD_LOAD_PLUGINS": "",
                                     "HABITREWARD_EXTRA_PLUGINS": "weekend_rules.Weekend"})
    assert str(refused.value) == (
        "HABITREWARD_EXTRA_PLUGINS: 'weekend_rules.Weekend' is the class Weekend in the module weekend_rules, not a"
        " module: HABITREWARD_EXTRA_PLUGINS names modules, whose functions are the hooks (an instance, Weekend(),"
        " loads through an entry point: 'weekend_rules:plugin' with plugin = Weekend() in weekend_rules;"
        " docs/plugins.md)")


def test_plugins_marks_a_plugin_without_hooks(modules):
    """A plugin none of whose functions is a hook is never called: listed with an empty hooks
    column, it looked loaded and working."""
    import json

    modules(helpers_only="""
        def habit_bonus(habit):  # meant as a rule, but no hook: never called
            return 2.0
    """, working=COMMANDS_PLUGIN)
    listed = plugins_command("helpers_only,working")
    assert listed.exit_code == 0, listed.output
    lines = {line.split()[0]: line for line in listed.output.splitlines() if line.strip()}
    assert lines["helpers_only"].endswith("(no hooks)")
    assert lines["working"].endswith("habitreward_register_commands")
    assert lines["(no"].startswith("(no hooks): it implements no hook, so it is never called: no function of it is"
                                   " marked @hookimpl")

    data = json.loads(plugins_command("helpers_only,working", "--json").output)
    warnings = {plugin["name"]: (plugin["hooks"], plugin["warning"]) for plugin in data}
    assert warnings["working"] == (["habitreward_register_commands"], None)
    assert warnings["helpers_only"][0] == []
    assert warnings["helpers_only"][1].startswith("it implements no hook, so it is never called")


def test_plugins_says_nothing_of_hooks_when_every_plugin_has_some(modules):
    modules(working=COMMANDS_PLUGIN)
    listed = plugins_command("working")
    assert "no hook" not in listed.output
