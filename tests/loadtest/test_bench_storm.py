"""`crossroads bench storm`: the plumbing on a tiny run (no speed is asserted: the figures are
the benchmark's to print, see README).

No __init__.py here on purpose: it would make this directory shadow the `loadtest` package.
"""

from __future__ import annotations

import re

import pytest

from loadtest import bench
from loadtest.bench_subscribers import have_pyzmq


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["storm", "--help"])
    assert exc.value.code == 0
    assert "--connections" in capsys.readouterr().out


def test_a_bad_count_is_one_line_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["storm", "--connections", "0"])
    assert exc.value.code == 2
    assert "--connections" in capsys.readouterr().err


@pytest.mark.skipif(not have_pyzmq(), reason="needs pyzmq: the connecting side is libzmq")
@pytest.mark.parametrize("mechanism", [[], ["--curve"]], ids=["null", "curve"])
def test_tiny_run_times_every_row_and_each_connection_arrives(
    mechanism: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["storm", "--connections", "150", "--backlog", "200", "--rounds", "1", *mechanism]
    assert bench.main(argv) == 0
    captured = capsys.readouterr()
    rows = re.findall(
        r"^\| (engine \(asyncio\)|libzmq \(pyzmq\)) \| (\d+) \| ([\d.]+) s \|", captured.out, re.M
    )
    assert sorted((name, int(backlog)) for name, backlog, _ in rows) == [
        ("engine (asyncio)", 100),
        ("engine (asyncio)", 200),
        ("libzmq (pyzmq)", 100),
        ("libzmq (pyzmq)", 200),
    ]
    assert "incomplete" not in captured.out
    assert captured.err.count("150/150 in") == 4  # every connection's subscription came up
