"""A user without an optional extra is told the `pip install 'crossroads[...]'` line that fixes
it, in one line, whichever command needs it. The extra's modules are hidden from the real
command (a subprocess) by an import hook in a sitecustomize on its PYTHONPATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
HIDE = """
import os, sys

HIDDEN = set(os.environ["CROSSROADS_TEST_HIDE"].split(","))


class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Hide())
"""


@pytest.mark.parametrize(
    ("hidden", "args", "extra"),
    [
        ("locust", ["loadtest", "--run-time", "1s"], "loadtest"),
        ("redis", ["serve", "--store", "redis://127.0.0.1:9/0", "--workers", "1"], "redis"),
        ("prompt_toolkit", ["play", "--name", "erin"], "client"),
        ("nacl", ["bench", "storm", "--connections", "20", "--rounds", "1", "--curve"], "curve"),
    ],
)
def test_a_missing_extra_names_its_pip_line(
    tmp_path: Path, hidden: str, args: list[str], extra: str
) -> None:
    (tmp_path / "sitecustomize.py").write_text(HIDE)
    env = dict(os.environ, CROSSROADS_TEST_HIDE=hidden, CROSSROADS_PASSWORD="long-enough")
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(REPO_ROOT)])
    done = subprocess.run(
        [sys.executable, "-m", "crossroads", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode != 0, done.stdout
    assert f"pip install 'crossroads[{extra}]'" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
