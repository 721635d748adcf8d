"""Admission and flood control, sans I/O (gameserver/admission.py): budgets per source and for
the whole front, registrations bounded, error answers budgeted, memory bounded."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gameserver.admission import Admission, AdmissionPolicy, Login

POLICY = AdmissionPolicy()


def test_a_source_over_its_request_budget_is_limited_and_recovers() -> None:
    gate = Admission(POLICY)
    taken = sum(gate.request("a", 0.0) for _ in range(500))
    assert taken == POLICY.request_burst
    assert gate.request("b", 0.0)  # another source is unaffected
    assert gate.request("a", 1.0)  # refilled
    assert gate.stats.limited == 500 - POLICY.request_burst


def test_logins_past_the_registration_budget_may_only_log_in_existing_players() -> None:
    gate = Admission(POLICY)
    verdicts = []
    for _ in range(int(POLICY.login_burst)):
        verdicts.append(gate.login("one", 0.0))
    registered = verdicts.count(Login.REGISTER)
    assert registered == POLICY.registration_burst
    assert verdicts.count(Login.EXISTING_ONLY) == POLICY.login_burst - registered
    assert gate.login("one", 0.0) is Login.REFUSED  # its login budget is spent


def test_the_front_login_budget_holds_many_sources() -> None:
    gate = Admission(POLICY)
    verdicts = []
    for i in range(1000):
        verdicts.append(gate.login(("conn", i), 0.0))
    admitted = len(verdicts) - verdicts.count(Login.REFUSED)
    assert admitted == POLICY.front_login_burst
    assert verdicts.count(Login.REGISTER) <= POLICY.front_registration_burst


def test_error_answers_are_budgeted() -> None:
    gate = Admission(POLICY)
    answered = sum(gate.may_answer_error("x", 0.0) for _ in range(10_000))
    assert answered == POLICY.error_burst
    assert gate.stats.silenced == 10_000 - POLICY.error_burst


def test_sources_are_forgotten_beyond_the_bound() -> None:
    gate = Admission(AdmissionPolicy(max_sources=100))
    for i in range(10_000):
        gate.request(i, 0.0)
    assert len(gate._sources) == 100


@given(
    st.lists(
        st.tuples(st.integers(0, 20), st.floats(0, 0.5, allow_nan=False)),
        min_size=1,
        max_size=300,
    )
)
def test_registrations_never_exceed_the_front_budget(steps: list[tuple[int, float]]) -> None:
    gate = Admission(POLICY)
    now, registered = 0.0, 0
    for source, delay in steps:
        now += delay
        registered += gate.login(source, now) is Login.REGISTER
    allowed = POLICY.front_registration_burst + POLICY.front_registration_rate * now
    assert registered <= allowed + 1e-9


def test_a_source_is_the_routing_path_without_the_call_tag() -> None:
    from gameserver.admission import source_of

    # Two calls of one client (fresh tags) are one source; another connection is another.
    assert source_of([b"\0conn1", b"1", b""]) == source_of([b"\0conn1", b"2", b""]) == (b"\0conn1",)
    assert source_of([b"\0conn2", b"1", b""]) != source_of([b"\0conn1", b"1", b""])
    # Behind a relay: the relay's connection and the player's, not the tag.
    assert source_of([b"\0relay", b"\0player", b"7", b""]) == (b"\0relay", b"\0player")
    # A plain REQ (no tag): the connection.
    assert source_of([b"\0req", b""]) == (b"\0req",)


def test_one_address_shares_its_login_and_registration_budget_across_connections() -> None:
    gate = Admission(POLICY)
    # Many connections (fresh sources) from one address: the address's budgets bind.
    verdicts = [gate.login(("conn", i), i * 0.001, "192.0.2.7") for i in range(500)]
    registered = verdicts.count(Login.REGISTER)
    assert registered == POLICY.address_registration_burst
    # A second address still gets the front-wide budget that is left.
    assert gate.login(("other", 0), 0.5, "192.0.2.8") is not Login.REFUSED
    # Refused logins gave their tokens back to the budgets that had said yes.
    admitted = len(verdicts) - verdicts.count(Login.REFUSED)
    assert admitted <= POLICY.front_login_burst + POLICY.front_login_rate * 0.5 + 1


def test_this_machines_own_peers_are_not_budgeted_per_address() -> None:
    from gameserver.admission import budgeted_address

    assert budgeted_address("127.0.0.1") == budgeted_address("::1") == ""
    assert budgeted_address("localhost:1000:1000:42") == ""  # an ipc peer
    assert budgeted_address("") == ""
    assert budgeted_address("192.0.2.7") == "192.0.2.7"


def test_a_login_the_queue_turned_away_costs_its_newcomer_nothing() -> None:
    """A new player retrying a busy front (the login queue full) keeps every budget: without
    the refund, a few busy answers spent its login and registration tokens, and it was told
    to slow down, then that no account could be made."""
    gate = Admission(POLICY)
    for _ in range(10 * int(POLICY.login_burst)):  # far more tries than the source's burst
        verdict = gate.login("newcomer", 0.0, "192.0.2.9")
        assert verdict is Login.REGISTER
        gate.return_login("newcomer", 0.0, "192.0.2.9", verdict)
    # Nothing was spent: the source, its address and the front still have their whole bursts.
    assert [gate.login("newcomer", 0.0, "192.0.2.9") for _ in range(3)] == [Login.REGISTER] * 3
    assert gate._registrations.tokens == POLICY.front_registration_burst - 3
    assert gate._logins.tokens == POLICY.front_login_burst - 3
