"""Hypothesis strategies for the grant state tree's property tests (apart from ``strategies.py``, the log's)."""

from __future__ import annotations

from hypothesis import strategies as st

from consent_chain.state_tree import Event
from zk.poseidon import BN254_R

# Commitments that are not uniform draws get drawn on purpose: the smallest, the largest, and small integers.
commitments = st.one_of(st.integers(1, BN254_R - 1), st.sampled_from([1, 2, BN254_R - 1]), st.integers(1, 2**64))


@st.composite
def grant_events(draw: st.DrawFn, max_events: int = 24, capacity: int | None = None) -> list[Event]:
    """An ordered, valid sequence of GRANT / REVOKE events: only active leaves are revoked; at most ``capacity``
    grants (a tree's 2^depth)."""
    events: list[Event] = []
    active: list[int] = []
    size = 0
    for _ in range(draw(st.integers(0, max_events))):
        full = capacity is not None and size >= capacity
        if active and (full or draw(st.booleans())):
            index = draw(st.sampled_from(active))
            active.remove(index)
            events.append(("revoke", index))
        elif not full:
            events.append(("grant", draw(commitments)))
            active.append(size)
            size += 1
    return events
