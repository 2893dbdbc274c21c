"""Poseidon over BN254: the circomlib known answers and parameter sanity."""

from __future__ import annotations

import pytest

from zk.poseidon import BN254_R, PARTIAL_ROUNDS, params, poseidon


def test_known_answer_from_the_issue_and_circomlibjs() -> None:
    # circomlibjs test/poseidon.js: poseidon([1, 2]).
    assert poseidon([1, 2]) == 7853200120776062878684798364095072458815029376092732009249414926327459813530


def test_known_answer_single_input() -> None:
    # circomlibjs test/poseidon.js: poseidon([1]).
    assert poseidon([1]) == 18586133768512220936620570745912940619677854269274689475585506675881198879027


@pytest.mark.parametrize("t", range(2, len(PARTIAL_ROUNDS) + 2))
def test_derived_parameters_are_well_formed(t: int) -> None:
    p = params(t)
    assert len(p.round_constants) == (8 + PARTIAL_ROUNDS[t - 2]) * t
    assert all(0 <= c < BN254_R for c in p.round_constants)
    assert len(p.mds) == t
    assert all(len(row) == t and all(0 < m < BN254_R for m in row) for row in p.mds)


@pytest.mark.parametrize("bad", [[], [BN254_R], [-1], list(range(17))])
def test_refuses_what_is_not_1_to_16_field_elements(bad: list[int]) -> None:
    with pytest.raises(ValueError, match="Poseidon"):
        poseidon(bad)
