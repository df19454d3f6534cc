"""Regenerate the reference parts of the docs from the code, so they cannot drift.

    python docs/gen_reference.py          # rewrite docs/cli.md and the settings table of docs/configuration.md
    python docs/gen_reference.py --check  # exit 1 if either is stale (the test suite does this)

docs/cli.md comes from the commands' own --help texts (third-party plugins' commands left out);
the settings table comes from habitreward.settings.Settings.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

CLI_DOC = Path(__file__).with_name("cli.md")
CONFIG_DOC = Path(__file__).with_name("configuration.md")
PLUGINS_DOC = Path(__file__).with_name("plugins.md")
HEADER = """# Command line reference

Generated from `--help` by `python docs/gen_reference.py`; do not edit by hand. Every command reads its
settings from the environment and `.env` (see [configuration.md](configuration.md)); errors are one
line on stderr and exit code 1, a plugin's too (naming the plugin; `-vv` adds the traceback). A
plugin whose `habitreward_register_commands` fails is one warning line on every command, and only
its own commands are missing (see [plugins.md](plugins.md)).
"""


def _walk(command: click.Command, path: list[str]):
    yield path, command
    if isinstance(command, click.Group):
        for name in sorted(command.list_commands(click.Context(command))):
            yield from _walk(command.get_command(click.Context(command), name), [*path, name])


def render_cli() -> str:
    from habitreward.cli import cli

    parts = [HEADER]
    for path, command in _walk(cli, ["habitreward"]):
        with click.Context(command, info_name=" ".join(path), terminal_width=100, max_content_width=100) as ctx:
            text = command.get_help(ctx)
        parts.append(f"\n## `{' '.join(path)}`\n\n```text\n{text}\n```\n")
    return "".join(parts)


def _replace_block(current: str, name: str, body: str) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    head, rest = current.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def render_hooks(current: str) -> str:
    import inspect

    from habitreward import hookspecs

    sections = []
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction):
        if not name.startswith("habitreward_"):
            continue
        options = getattr(function, "habitreward_spec", {}) or {}
        first = " (first answer wins)" if options.get("firstresult") else ""
        signature = str(inspect.signature(function)).replace("'", "")
        doc = inspect.cleandoc(function.__doc__ or "")
        sections.append(f"### `{name}`{first}\n\n```python\ndef {name}{signature}\n```\n\n{doc}\n")
    return _replace_block(current, "hooks", "\n".join(sections))


def render_settings(current: str) -> str:
    from habitreward.settings import Settings

    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for env, default, help_text in Settings.describe():
        rows.append(f"| `{env}` | {f'`{default}`' if default else ''} | {help_text} |")
    return _replace_block(current, "settings", "\n".join(rows))


def main() -> int:
    targets = {
        CLI_DOC: render_cli(),
        CONFIG_DOC: render_settings(CONFIG_DOC.read_text()),
        PLUGINS_DOC: render_hooks(PLUGINS_DOC.read_text()),
    }
    stale = [path for path, text in targets.items() if path.read_text() != text] if CLI_DOC.exists() else list(targets)
    if "--check" in sys.argv:
        for path in stale:
            print(f"{path.name} is stale: run python docs/gen_reference.py", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(targets[path])
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
