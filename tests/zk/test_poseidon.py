"""Poseidon over BN254: circomlib known answers, circomlibjs vectors of every width, the fast form vs the textbook."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from zk.poseidon import BN254_R, FULL_ROUNDS, PARTIAL_ROUNDS, params, poseidon


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


VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "poseidon_circomlibjs.json").read_text())


@pytest.mark.parametrize(
    "case", VECTORS["poseidon"], ids=[f"width{len(c['inputs'])}-{i % 2}" for i, c in enumerate(VECTORS["poseidon"])]
)
def test_equals_the_circomlibjs_vectors_of_every_width(case: dict[str, Any]) -> None:
    assert poseidon([int(x) for x in case["inputs"]]) == int(case["hash"])


def _textbook_permutation(state: list[int], t: int) -> list[int]:
    """The permutation as the paper states it: every round adds constants, S-boxes (all or word 0), mixes."""
    p = params(t)
    half = FULL_ROUNDS // 2
    for rnd in range(FULL_ROUNDS + p.partial_rounds):
        state = [(s + p.round_constants[rnd * t + i]) % BN254_R for i, s in enumerate(state)]
        if half <= rnd < half + p.partial_rounds:
            state[0] = pow(state[0], 5, BN254_R)
        else:
            state = [pow(s, 5, BN254_R) for s in state]
        state = [sum(m * s for m, s in zip(row, state, strict=True)) % BN254_R for row in p.mds]
    return state


@pytest.mark.parametrize("width", range(1, len(PARTIAL_ROUNDS) + 1))
def test_the_fast_form_equals_the_textbook_permutation(width: int) -> None:
    rng = random.Random(width)
    for inputs in ([0] * width, [BN254_R - 1] * width, [rng.randrange(BN254_R) for _ in range(width)]):
        assert poseidon(inputs) == _textbook_permutation([0, *inputs], width + 1)[0]
