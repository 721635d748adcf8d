"""The load tester's players, against a real server: one decoding of each event per process."""

from __future__ import annotations

import secrets

from serverkit import StartServer

from loadtest import syncclient
from loadtest.syncclient import SyncGameClient

#: Seconds a player waits to hear a `say` (generous for a loaded 2-core machine).
HEAR_S = 20.0


def test_two_players_of_one_process_hear_a_say_decoded_once(
    start_server: StartServer, sqlite_url: str
) -> None:
    server = start_server(sqlite_url, 1)
    context = server.client_context()
    players = [SyncGameClient(server.actions, server.updates, context) for _ in range(2)]
    try:
        for n, player in enumerate(players):
            player.login(f"shared{n}", "a long enough password", timeout=HEAR_S)
        assert players[0].room == players[1].room  # both start where every player starts
        # Both hear a first say: their subscriptions have reached the front, so the measured
        # say below comes to each live (a subscription still on its way means a catch-up,
        # decoded elsewhere: seen once in CI under load, with no hit).
        warm_up = secrets.token_hex(6)
        for player in players:
            player.listening.add(warm_up)
        players[0].act(f"say {warm_up}")
        assert all(player.hear(warm_up, HEAR_S) is not None for player in players)
        message = secrets.token_hex(6)
        for player in players:
            player.listening.add(message)
        decoded_before = len(syncclient.PUBLICATIONS)
        hits_before = syncclient.PUBLICATIONS.hits
        players[0].act(f"say {message}")
        assert all(player.hear(message, HEAR_S) is not None for player in players)
        # The say was decoded by the first player to read it and answered from the memo for
        # the second; other frames (the second player's arrival, say) may add to both counts.
        assert len(syncclient.PUBLICATIONS) > decoded_before
        assert syncclient.PUBLICATIONS.hits > hits_before
    finally:
        for player in players:
            player.close()
        context.term()
