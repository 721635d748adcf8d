"""Put the repository root on sys.path so tests can import engine/ and friends, and give each
test a data directory of its own."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


@pytest.fixture(autouse=True)
def own_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """XDG_DATA_HOME for this test and what it starts: the store, keys and known hosts that
    processes keep in their data directory stay the test's own. Shared, the known-hosts file
    (the runner's ~/.local/share/crossroads) gathered the keys of every front earlier tests ran
    on 127.0.0.1, and a later test whose plaintext publisher got one of their port numbers had
    its relay insist on that key and hear nothing: a CI failure of the multicast relay test."""
    data = tmp_path_factory.mktemp("xdg-data")
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    return data
