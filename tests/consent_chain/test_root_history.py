"""Which grant roots a proof of consent may name: current; superseded by grants within the window; none from
before a revocation."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from consent_chain.entries import GrantEntry, RevokeEntry
from consent_chain.root_history import RootHistory
from consent_chain.state_tree import GrantTree

PATIENT = "0x" + "11" * 20
WINDOW = 300


def grant(n: int, time: int) -> GrantEntry:
    return GrantEntry(n.to_bytes(32, "big"), PATIENT, 1000 + n, n, time, b"\x00" * 65, time)


def revoke(n: int, time: int) -> RevokeEntry:
    return RevokeEntry(n.to_bytes(32, "big"), PATIENT, 99, time, b"\x00" * 65, time)


def test_roots_superseded_by_grants_stay_acceptable_for_the_window() -> None:
    history = RootHistory()
    history.extend([grant(1, 100)])
    first = history.current
    history.extend([grant(2, 200)])
    known = history.known_roots(now=250, window=WINDOW)
    assert known[history.current] is None
    assert known[first] == 200  # superseded at the second grant's time: within the window until 500
    assert GrantTree().root in known


def test_a_revocation_retires_every_earlier_root_at_once() -> None:
    history = RootHistory()
    history.extend([grant(1, 100), grant(2, 110)])
    before = history.current
    history.extend([revoke(1, 120)])
    known = history.known_roots(now=121, window=WINDOW)
    assert known[before] is not None
    assert 121 - known[before] > WINDOW  # stale one second after the revocation
    assert known[history.current] is None
    assert history.retired() == {before, GrantTree().root, *(c.root for c in history.changes[:-2])}
    assert history.current not in history.retired()
    # New grants after the revocation supersede roots in the ordinary way again.
    after = history.current
    history.extend([grant(3, 130)])
    assert history.known_roots(now=140, window=WINDOW)[after] == 130


def test_entries_that_do_not_touch_the_tree_change_nothing() -> None:
    history = RootHistory()
    history.extend([grant(1, 100), revoke(7, 105)])  # a revocation of an unknown grant is not a tree event
    assert history.size == 2
    assert [c.revocation for c in history.changes] == [False, False]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5)), max_size=12))
def test_the_history_replays_the_tree(events: list[tuple[bool, int]]) -> None:
    history = RootHistory()
    tree = GrantTree()
    granted: dict[int, int] = {}
    time = 0
    for is_grant, n in events:
        time += 10
        if is_grant and n not in granted:
            granted[n] = tree.append(1000 + n)
            history.extend([grant(n, time)])
        elif not is_grant and n in granted and tree.leaf(granted[n]) != 0:
            tree.revoke(granted[n])
            history.extend([revoke(n, time)])
        assert history.current == tree.root
        known = history.known_roots(now=time, window=WINDOW)
        assert known[tree.root] is None
        last_revocation = max((i for i, c in enumerate(history.changes) if c.revocation), default=0)
        for i, change in enumerate(history.changes[:-1]):
            if change.root == tree.root:
                continue
            latest = max(j for j, c in enumerate(history.changes) if c.root == change.root)
            stale = time - (known[change.root] or 0) > WINDOW
            assert stale == (latest < last_revocation), (i, latest, last_revocation)
