"""Meta-tests that keep the promises the docs make."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from habitreward import hookspecs

ROOT = Path(__file__).resolve().parent.parent
HOOKS = [name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("habitreward_")]


@pytest.mark.no_db
def test_generated_reference_docs_are_up_to_date():
    result = subprocess.run([sys.executable, str(ROOT / "docs" / "gen_reference.py"), "--check"],
                            capture_output=True, text=True, env={"HABITREWARD_LOAD_PLUGINS": "", "PATH": ""})
    assert result.returncode == 0, result.stderr


@pytest.mark.no_db
@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_and_tested(hook):
    function = getattr(hookspecs, hook)
    assert function.__doc__ and len(function.__doc__.strip()) > 30, f"{hook} needs a docstring"
    assert f"### `{hook}`" in (ROOT / "docs" / "plugins.md").read_text()
    tests = [p for p in (ROOT / "tests").glob("test_*.py") if p.name != "test_docs.py" and hook in p.read_text()]
    assert tests, f"no test mentions {hook}"


@pytest.mark.no_db
@pytest.mark.parametrize("example", sorted(p.name for p in (ROOT / "examples").glob("*.py")))
def test_examples_run_and_say_how(example):
    path = ROOT / "examples" / example
    text = path.read_text()
    assert text.startswith('"""') and "python examples/" in text, "an example's docstring says how to run it"
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120,
                            env={"HABITREWARD_LOAD_PLUGINS": "", "PATH": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


@pytest.mark.no_db
def test_readme_gives_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "habitreward chat" in readme
    assert "python -m pytest" in readme
    assert "python -m pytest" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.no_db
def test_the_plugin_and_test_in_plugins_md_work_as_written(tmp_path):
    """docs/plugins.md's first example (a plugin) and its test, in a project of their own."""
    blocks = (ROOT / "docs" / "plugins.md").read_text().split("```python\n")
    plugin = blocks[1].split("```")[0]
    test = next(b.split("```")[0] for b in blocks[2:] if "def test_my_plugin" in b)
    (tmp_path / "my_plugin.py").write_text(plugin)
    (tmp_path / "test_my_plugin.py").write_text(test)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={"HABITREWARD_LOAD_PLUGINS": "", "PATH": "", "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def _python_blocks(page: str) -> list[str]:
    return [b.split("```")[0] for b in (ROOT / "docs" / page).read_text().split("```python\n")[1:]]


@pytest.mark.no_db
def test_the_programs_in_embedding_md_run_as_written(tmp_path):
    """docs/embedding.md's first program, then its plugin registered in code on that program's
    engine: the plugin's award comes with the next completion."""
    program, plugin = _python_blocks("embedding.md")
    assert program.endswith("engine.close()\n")
    check = ("clock.advance(days=1)\n"
             "assert [a.message for a in engine.complete(ann, running).awards] == ['Well done, Ann!']\n"
             "engine.close()\n"
             "print('cheered')\n")
    script = tmp_path / "embedding_program.py"
    script.write_text(program.removesuffix("engine.close()\n") + plugin + check)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          env={"HABITREWARD_LOAD_PLUGINS": "", "PATH": ""})
    assert done.returncode == 0, done.stderr
    assert "'Coffee' is" in done.stdout and done.stdout.strip().endswith("cheered")


@pytest.mark.no_db
def test_embedding_md_names_every_public_call_of_the_engine():
    from habitreward.engine import Engine

    page = (ROOT / "docs" / "embedding.md").read_text()
    public = [name for name, _ in inspect.getmembers(Engine, inspect.isfunction) if not name.startswith("_")]
    assert [name for name in public if f"{name}(" not in page] == []


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.no_db
def test_links_between_the_docs_lead_somewhere():
    """A relative link in README.md or docs/ names a file that exists and, with #, a heading in it."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(ROOT.glob("plugins/*/README.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked.read_text()):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_reward_kept_out_of_the_draw_in_plugins_md(engine, tmp_path, monkeypatch):
    """docs/plugins.md's wrapper: its reward leaves the draw and the odds, the others keep the
    weights the built-in gave them (the odds multiplier too), and grant_piece still gives it."""
    import importlib

    code = re.search(r"<!-- example: bonus_out_of_draw.py -->\n```python\n(.*?)```",
                     (ROOT / "docs" / "plugins.md").read_text(), re.S)[1]
    (tmp_path / "bonus_out_of_draw.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "bonus_out_of_draw", raising=False)
    user = engine.add_user(1, "Ann", active=True)
    run = engine.add_habit("Run", weight=20)
    bonus = engine.add_reward("Perfect day", weight=1000, pieces_required=5, max_per_day=0)
    engine.add_reward("Coffee", weight=1, pieces_required=5, max_per_day=0)
    before = {row.reward.name if row.reward else None: row.weight for row in engine.odds(user, run).rows}

    engine.pm.register(importlib.import_module("bonus_out_of_draw"))
    after = {row.reward.name if row.reward else None: row.weight for row in engine.odds(user, run).rows}
    assert before["Perfect day"] > 0 and before["Coffee"] > 1  # the multiplier: weight 20, streak 1
    assert after == {"Coffee": before["Coffee"]}
    assert engine.complete(user, run).reward.name == "Coffee"  # the only one left: every draw
    assert engine.grant_piece(user, bonus).pieces_earned == 1
