"""Encrypted tree evaluation (models.he): agreement with the plaintext reference, the slot plan, the sign
composite, and the refusals at the trust boundary.

The same agreement test runs on two evaluators: the slot plan's plaintext twin (``simulate``, every held-out row)
and the encrypted evaluation itself (every held-out row: slow; a few rows per model in the fast suite, so that CI
exercises the real encrypted path).
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Callable

import numpy as np
import pytest
from numpy.polynomial import chebyshev, polynomial

from models import _he_plan, _he_sign
from models.features import FeatureSpec, Quantizer
from models.he import PARAMETERS, EvaluationKeys, HeClient, HeError, HeModel, HeParameters, load_context
from models.recipes import RECIPES
from models.registry import ModelArtifact
from models.train import Split
from models.trees import layout, path_margins

MODELS = sorted(RECIPES)
MAX_DELTA = 5e-3
"""The issue's tolerance on margins; decisions must agree wherever ``|margin| > DECIDED``."""
DECIDED = 0.01
SEED = (1, 2, 3, 4, 5, 6, 7, 8)


def _hide(x: np.ndarray, rate: float, seed: int) -> np.ndarray:
    out = x.copy()
    out[np.random.default_rng(seed).random(out.shape) < rate] = np.nan
    return out


@pytest.fixture(scope="session")
def client() -> HeClient:
    return HeClient(seed=SEED)


@pytest.fixture(scope="session")
def keys(client: HeClient) -> EvaluationKeys:
    return load_context(client.public_context())


@pytest.fixture(scope="session")
def he_models(artifacts: dict[str, ModelArtifact]) -> dict[str, HeModel]:
    return {name: HeModel.from_layout(layout(a.ensemble), a.spec) for name, a in artifacts.items()}


def _encrypted(client: HeClient, keys: EvaluationKeys, model: HeModel) -> Callable[[np.ndarray, int], float]:
    def evaluate(unit: np.ndarray, mask: int) -> float:
        return client.decrypt_margin(model.evaluate(keys, client.encrypt(unit), mask))

    return evaluate


def _assert_agree(ours: np.ndarray, reference: np.ndarray) -> None:
    delta = np.abs(ours - reference)
    assert float(np.max(delta)) <= MAX_DELTA, f"max |delta margin| {np.max(delta):.2e}"
    decided = np.abs(reference) > DECIDED
    assert np.array_equal(np.sign(ours[decided]), np.sign(reference[decided]))


def _margins(evaluate: Callable[[np.ndarray, int], float], spec: FeatureSpec, x: np.ndarray) -> np.ndarray:
    unit = spec.unit(x)
    return np.array([evaluate(unit[i], spec.used_mask(x[i])) for i in range(len(x))])


# ---------------------------------------------------------------------------------------------------------------
# Agreement


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("missing_rate", [0.0, 0.3])
@pytest.mark.parametrize("evaluator", ["slot-plan", pytest.param("encrypted", marks=pytest.mark.slow)])
def test_margins_agree_with_the_reference_on_every_held_out_row(
    name: str,
    missing_rate: float,
    evaluator: str,
    artifacts: dict[str, ModelArtifact],
    splits: dict[str, Split],
    request: pytest.FixtureRequest,
) -> None:
    artifact = artifacts[name]
    lay = layout(artifact.ensemble)
    x = _hide(splits[name].x_test, missing_rate, seed=11)
    if evaluator == "slot-plan":
        p = _he_plan.plan(lay, artifact.spec)

        def evaluate(unit: np.ndarray, mask: int) -> float:
            return _he_plan.simulate(p, unit, mask)

    else:
        evaluate = _encrypted(
            request.getfixturevalue("client"),
            request.getfixturevalue("keys"),
            request.getfixturevalue("he_models")[name],
        )
    _assert_agree(_margins(evaluate, artifact.spec, x), path_margins(lay, x))


@pytest.mark.parametrize("name", MODELS)
def test_encrypted_margins_agree_on_a_few_patients(
    name: str,
    client: HeClient,
    keys: EvaluationKeys,
    he_models: dict[str, HeModel],
    artifacts: dict[str, ModelArtifact],
    splits: dict[str, Split],
) -> None:
    # One held-out patient per model; for diabetes with half of its features missing (resolved in the clear).
    artifact = artifacts[name]
    x = splits[name].x_test[:1].copy()
    if name == "diabetes":
        x[0, ::2] = np.nan
    ours = _margins(_encrypted(client, keys, he_models[name]), artifact.spec, x)
    _assert_agree(ours, path_margins(layout(artifact.ensemble), x))


def test_a_patient_with_every_feature_missing_gets_the_default_path(
    client: HeClient, keys: EvaluationKeys, he_models: dict[str, HeModel], artifacts: dict[str, ModelArtifact]
) -> None:
    artifact = artifacts["diabetes"]
    x = np.full((1, artifact.spec.n_features), np.nan)
    ours = _margins(_encrypted(client, keys, he_models["diabetes"]), artifact.spec, x)
    _assert_agree(ours, path_margins(layout(artifact.ensemble), x))


def test_the_reply_holds_the_margin_in_every_slot(
    reply: bytes, client: HeClient, artifacts: dict[str, ModelArtifact], splits: dict[str, Split]
) -> None:
    # Nothing but the margin leaves the server: no leaf, path or partial sum sits in any slot.
    expected = path_margins(layout(artifacts["diabetes"].ensemble), splits["diabetes"].x_test[:1])[0]
    slots = client.decrypt_slots(reply)
    assert slots.shape == (PARAMETERS.slots,)
    assert np.max(np.abs(slots - expected)) <= MAX_DELTA
    assert client.decrypt_margin(reply) == pytest.approx(expected, abs=MAX_DELTA)


# ---------------------------------------------------------------------------------------------------------------
# Refusals at the trust boundary


@pytest.fixture(scope="session")
def query(client: HeClient, artifacts: dict[str, ModelArtifact], splits: dict[str, Split]) -> bytes:
    return client.encrypt(artifacts["diabetes"].spec.unit(splits["diabetes"].x_test[:1])[0])


@pytest.fixture(scope="session")
def reply(query: bytes, keys: EvaluationKeys, he_models: dict[str, HeModel]) -> bytes:
    return he_models["diabetes"].evaluate(keys, query, (1 << 7) - 1)


OTHER_PRIMES = HeParameters(16384, (40, 30, 30, 30, 30), 60, 30)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda q: b"not a query at all", "not a pchr query"),
        (lambda q: q[: len(q) // 2], "truncated"),
        (lambda q: q + b"\0", "trailing bytes"),
        (lambda q: q[:-100] + bytes(100), "does not belong to the evaluation parameters"),
        (lambda q: _with_header(q, 4096, 7), "4096 slots; the evaluation needs 8192"),
        (lambda q: _with_header(q, 8192, 30), "encodes 30 features; the model takes 7"),
    ],
)
def test_queries_that_do_not_fit_are_refused(
    mutate: Callable[[bytes], bytes], message: str, query: bytes, keys: EvaluationKeys, he_models: dict[str, HeModel]
) -> None:
    with pytest.raises(HeError, match=message):
        he_models["diabetes"].evaluate(keys, mutate(query), 1)


def _with_header(query: bytes, slots: int, n_features: int) -> bytes:
    magic = b"pchr-he-query/1\n"
    header = struct.pack(">II", slots, n_features)
    rest = query[len(magic) + 8 + 8 :]
    return magic + struct.pack(">Q", len(header)) + header + rest


def test_a_ciphertext_from_other_parameters_is_refused(
    keys: EvaluationKeys, he_models: dict[str, HeModel], artifacts: dict[str, ModelArtifact]
) -> None:
    stranger = HeClient(parameters=OTHER_PRIMES)
    foreign = stranger.encrypt(np.zeros(artifacts["diabetes"].spec.n_features))
    with pytest.raises(HeError, match="ciphertext does not belong to the evaluation parameters"):
        he_models["diabetes"].evaluate(keys, foreign, 1)


@pytest.mark.parametrize("mask", [1 << 7, -1, 1 << 64, True, 1.0])
def test_a_mask_that_does_not_fit_the_model_is_refused(
    mask: object, query: bytes, keys: EvaluationKeys, he_models: dict[str, HeModel]
) -> None:
    with pytest.raises(HeError, match="does not fit the model's 7 features"):
        he_models["diabetes"].evaluate(keys, query, mask)  # type: ignore[arg-type]


def test_a_query_for_another_model_is_refused(
    client: HeClient, keys: EvaluationKeys, he_models: dict[str, HeModel], query: bytes
) -> None:
    with pytest.raises(HeError, match="encodes 7 features; the model takes 30"):
        he_models["breast"].evaluate(keys, query, 1)


def test_contexts_that_do_not_fit_are_refused(client: HeClient) -> None:
    context = client.public_context()
    with pytest.raises(HeError, match="not a pchr context"):
        load_context(b"garbage")
    with pytest.raises(HeError, match="truncated"):
        load_context(context[:1000])
    # The relinearization key where the Galois keys belong.
    magic = b"pchr-he-context/1\n"
    sections = []
    offset = len(magic)
    for _ in range(3):
        (size,) = struct.unpack(">Q", context[offset : offset + 8])
        sections.append(context[offset + 8 : offset + 8 + size])
        offset += 8 + size
    swapped = magic + b"".join(struct.pack(">Q", len(s)) + s for s in (sections[0], sections[1], sections[1]))
    with pytest.raises(HeError, match="Galois key"):
        load_context(swapped)


def test_a_context_from_other_parameters_is_refused() -> None:
    with pytest.raises(HeError, match="coefficient modulus differs"):
        load_context(HeClient(parameters=OTHER_PRIMES).public_context())


def test_a_reply_for_another_key_or_garbage_is_refused(reply: bytes, client: HeClient) -> None:
    assert math.isfinite(client.decrypt_margin(reply))
    with pytest.raises(HeError, match="does not decrypt to a margin"):
        HeClient(seed=(9,) * 8).decrypt_margin(reply)
    with pytest.raises(HeError, match="not a pchr reply"):
        client.decrypt_margin(b"pchr-he-query/1\n")
    with pytest.raises(HeError, match="does not belong to the evaluation parameters"):
        client.decrypt_margin(b"pchr-he-margin/1\n" + struct.pack(">Q", 3) + b"abc")


@pytest.mark.parametrize(
    ("unit", "message"),
    [
        (np.array([0.5, 1.5]), r"unit coordinates lie in \[0, 1\]"),
        (np.zeros((2, 3)), "one row of unit coordinates"),
        (np.zeros(0), "0 features do not fit"),
    ],
)
def test_the_client_refuses_what_it_cannot_encode(unit: np.ndarray, message: str, client: HeClient) -> None:
    with pytest.raises(HeError, match=message):
        client.encrypt(unit)


def test_a_client_needs_a_seed_of_eight_words() -> None:
    with pytest.raises(HeError, match="eight 64-bit words"):
        HeClient(seed=(1, 2, 3))


def test_models_the_plan_cannot_hold_are_refused(artifacts: dict[str, ModelArtifact]) -> None:
    artifact = artifacts["diabetes"]
    with pytest.raises(HeError, match="trees of depth 5 exceed"):
        HeModel.from_layout(layout(artifact.ensemble, 5), artifact.spec)
    # A grid four times finer: the trained thresholds no longer sit half a (coarse) step from every grid point.
    fine = dataclasses.replace(
        artifact.spec,
        features=tuple(
            dataclasses.replace(
                f, quantizer=Quantizer(f.quantizer.lo, f.quantizer.step / 4, 4 * f.quantizer.levels - 3)
            )
            for f in artifact.spec.features
        ),
    )
    with pytest.raises(HeError, match=r"below the 0\.00781 the sign approximation resolves"):
        HeModel.from_layout(layout(artifact.ensemble), fine)


# ---------------------------------------------------------------------------------------------------------------
# The slot plan and the sign composite


def test_parameters_are_the_documented_128_bit_set() -> None:
    assert PARAMETERS.poly_modulus_degree == 16384
    assert PARAMETERS.total_bits <= 438  # HE standard, 128-bit, N = 2^14
    assert len(PARAMETERS.bits) - 1 == 1 + sum((d).bit_length() for d in _he_sign.DEGREES[1:]) + 1 + 2


def test_the_client_vector_depends_on_the_features_alone() -> None:
    x = np.array([0.0, 0.25, np.nan, 1.0, 0.5])
    v = _he_plan.encode_features(x, 5)
    period = _he_plan.feature_period(5)
    assert period == 8
    for j in range(1, _he_plan.CHEBYSHEV_DEGREE + 1):
        block = v[(j - 1) * _he_plan.BLOCK : j * _he_plan.BLOCK]
        unit = np.zeros(j + 1)
        unit[j] = 1.0
        expected = chebyshev.chebval(2 * np.nan_to_num(x) - 1, unit)
        assert np.allclose(block[:5], expected)
        assert np.all(block[5:8] == 0)
        assert np.array_equal(block, np.tile(block[:period], _he_plan.BLOCK // period))
    assert np.all(v[_he_plan.CHEBYSHEV_DEGREE * _he_plan.BLOCK :] == 0)


def test_the_plan_resolves_missing_features_in_the_clear(artifacts: dict[str, ModelArtifact]) -> None:
    artifact = artifacts["breast-small"]
    p = _he_plan.plan(layout(artifact.ensemble), artifact.spec)
    odd, const = _he_plan.last_stage(p, 0)
    keyed = np.tile(np.array([k is not None for k in p.keys]), _he_plan.BLOCKS)
    assert all(np.all(c[keyed] == 0) for c in odd)
    assert np.all(const == 0)
    full_odd, full_const = _he_plan.last_stage(p, artifact.spec.full_mask)
    assert np.all(full_const[keyed] == 0.5)
    assert np.all(full_odd[0][keyed] == 0.5 * _he_sign.STAGES[-1][0])
    with pytest.raises(_he_plan.PlanError, match="does not fit"):
        _he_plan.last_stage(p, 1 << 30)


def test_stage_one_in_the_chebyshev_basis_is_the_minimax_stage() -> None:
    x = np.linspace(0.0, 1.0, 257)
    monomial = np.zeros(2 * len(_he_sign.STAGES[0]))
    monomial[1::2] = _he_sign.STAGES[0]
    for scale, threshold in [(1.0, 0.0039), (-2.0, 0.5), (-1.3, 0.77), (1.0, 1.004)]:
        coef = _he_sign.stage1_chebyshev(scale, threshold)
        assert np.max(np.abs(coef)) < 4  # bounded, unlike the monomial coefficients (up to 8e4)
        direct = polynomial.polyval(scale * (x - threshold), monomial)
        assert np.allclose(chebyshev.chebval(2 * x - 1, coef), direct, atol=1e-9)


def test_the_composite_approximates_sign_within_its_bound() -> None:
    y = np.concatenate([np.geomspace(_he_sign.EPSILON, 1.0, 5000), -np.geomspace(_he_sign.EPSILON, 1.0, 5000)])
    assert np.max(np.abs(_he_sign.evaluate(y) - np.sign(y))) <= _he_sign.ERROR_BOUND
    assert _he_sign.TAUS[-1] <= _he_sign.ERROR_BOUND


def test_the_stored_stages_are_what_remez_recomputes() -> None:
    stages, taus = _he_sign.composite()
    for ours, theirs in zip(_he_sign.STAGES, stages, strict=True):
        assert np.allclose(ours, theirs, rtol=1e-6, atol=1e-9)
    assert np.allclose(_he_sign.TAUS, taus, rtol=1e-6)


def test_remez_finds_the_known_cubic() -> None:
    # The odd cubic closest to 1 on [a, 1] equioscillates at a, the interior extremum and 1.
    coef, err = _he_sign.remez_odd(3, 0.5, 1.0)
    y = np.linspace(0.5, 1.0, 10_001)
    values = coef[0] * y + coef[1] * y**3 - 1
    assert abs(np.max(np.abs(values)) - err) < 1e-9
    assert abs(values[0]) == pytest.approx(err, abs=1e-9)
    assert values[-1] == pytest.approx(values[0], abs=1e-9)
    inner = values[np.argmax(np.abs(values[1:-1])) + 1]
    assert inner == pytest.approx(-values[0], abs=1e-6)
