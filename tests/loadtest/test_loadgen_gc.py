"""The load generator freezes its players' state once they have started (loadgen_gc), so its
own garbage collections do not walk it: one freeze per wave of players, none when no player
started."""

from __future__ import annotations

import gc

import gevent

from loadtest.loadgen_gc import FREEZE_EVERY_S, StartupFreezer


def test_one_freeze_covers_a_wave_of_players_and_none_follows_an_idle_spell() -> None:
    freezer = StartupFreezer()
    try:
        before = gc.get_freeze_count()
        for _ in range(3):  # a wave: players starting within FREEZE_EVERY_S of each other
            freezer.player_started()
        state = [object() for _ in range(100)]  # what they built, tracked by the collector
        tracked = [[item] for item in state]
        assert freezer._waiter is not None
        freezer._waiter.join(timeout=FREEZE_EVERY_S * 20)
        assert freezer.freezes == 1
        assert gc.get_freeze_count() >= before + len(tracked)
        gevent.sleep(0)
        assert freezer.freezes == 1  # nobody started since: nothing further is frozen

        freezer.player_started()  # the next wave
        freezer._waiter.join(timeout=FREEZE_EVERY_S * 20)
        assert freezer.freezes == 2
    finally:
        gc.unfreeze()


def test_settle_freezes_what_start_up_built_and_raises_the_young_threshold() -> None:
    threshold = gc.get_threshold()
    try:
        StartupFreezer().settle()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] > threshold[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
