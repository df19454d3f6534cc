"""docs/testing-plugins.md stays true: its plugin and tests run, in a project of their own,
with nothing but the fixtures habitreward publishes through its pytest11 entry point."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "testing-plugins.md"
EXAMPLE = re.compile(r"<!-- example: (?P<name>[\w.]+) -->\n```python\n(?P<code>.*?)```", re.S)


def examples() -> dict[str, str]:
    return {m["name"]: m["code"] for m in EXAMPLE.finditer(DOC.read_text(encoding="utf-8"))}


@pytest.mark.no_db
def test_the_documented_plugin_tests_pass(tmp_path):
    files = examples()
    assert set(files) == {"my_plugin.py", "test_my_plugin.py"}
    for name, code in files.items():
        (tmp_path / name).write_text(code, encoding="utf-8")

    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("HABITREWARD_EXTRA_PLUGINS", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
