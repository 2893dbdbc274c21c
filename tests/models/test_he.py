"""Encrypted tree evaluation (models.he): agreement with the plaintext reference, one patient and batches, the slot
plan, the sign composite, and the refusals at the trust boundary.

The same agreement test runs on two evaluators: the slot plan's plaintext twin (``simulate``, every held-out row)
and the encrypted evaluation itself (every held-out row: slow; a few rows per model in the fast suite, so that CI
exercises the real encrypted path), each against XGBoost's own ``predict(output_margin=True)``.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.polynomial import chebyshev

from models import _he_plan, _he_sign, errors
from models.features import FeatureSpec, Quantizer
from models.he import (
    BATCH_PATIENTS,
    INPUT_SCALE,
    PARAMETERS,
    TOP,
    EvaluationKeys,
    HeClient,
    HeError,
    HeModel,
    HeParameters,
    load_context,
)
from models.recipes import RECIPES
from models.registry import ModelArtifact
from models.train import Split, xgboost_margins
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
    evaluate: Callable[[np.ndarray, int], float]
    if evaluator == "slot-plan":
        p = _he_plan.plan(lay, artifact.spec)

        def evaluate(unit: np.ndarray, mask: int) -> float:
            return float(_he_plan.simulate(p, unit, [mask])[0])

    else:
        evaluate = _encrypted(
            request.getfixturevalue("client"),
            request.getfixturevalue("keys"),
            request.getfixturevalue("he_models")[name],
        )
    _assert_agree(_margins(evaluate, artifact.spec, x), xgboost_margins(artifact.booster_bytes(), x))


# Encrypted, the diabetes cohort takes seconds (about 30 queries of 4 patients): it runs in `make test`, so the
# default suite checks CKKS against XGBoost on a whole held-out set; the breast cohorts take minutes (slow).
@pytest.mark.parametrize(
    ("name", "evaluator"),
    [(name, "slot-plan") for name in MODELS]
    + [
        pytest.param(name, "encrypted", marks=() if name == "diabetes" else pytest.mark.slow, id=f"{name}-encrypted")
        for name in MODELS
    ],
)
def test_a_held_out_cohort_in_batches_agrees_with_the_reference(
    name: str,
    evaluator: str,
    artifacts: dict[str, ModelArtifact],
    splits: dict[str, Split],
    request: pytest.FixtureRequest,
) -> None:
    # The whole held-out set, a third of the values hidden, BATCH_PATIENTS patients per query (the last short).
    artifact = artifacts[name]
    lay = layout(artifact.ensemble)
    x = _hide(splits[name].x_test, 0.3, seed=5)
    unit, masks = artifact.spec.unit(x), [artifact.spec.used_mask(row) for row in x]
    if evaluator == "slot-plan":
        p = _he_plan.plan(lay, artifact.spec, _he_plan.BATCH)
        ours = np.concatenate(
            [
                _he_plan.simulate(p, unit[i : i + BATCH_PATIENTS], masks[i : i + BATCH_PATIENTS])
                for i in range(0, len(x), BATCH_PATIENTS)
            ]
        )
    else:
        client, keys = request.getfixturevalue("client"), request.getfixturevalue("keys")
        model = request.getfixturevalue("he_models")[name]
        queries = client.encrypt_cohort(unit)
        replies = [
            model.evaluate_batch(keys, q, masks[i * BATCH_PATIENTS : (i + 1) * BATCH_PATIENTS])
            for i, q in enumerate(queries)
        ]
        ours = client.decrypt_cohort(replies)
    assert ours.shape == (len(x),)
    _assert_agree(ours, xgboost_margins(artifact.booster_bytes(), x))


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
    _assert_agree(ours, xgboost_margins(artifact.booster_bytes(), x))


def test_a_patient_with_every_feature_missing_gets_the_default_path(
    client: HeClient, keys: EvaluationKeys, he_models: dict[str, HeModel], artifacts: dict[str, ModelArtifact]
) -> None:
    artifact = artifacts["diabetes"]
    x = np.full((1, artifact.spec.n_features), np.nan)
    ours = _margins(_encrypted(client, keys, he_models["diabetes"]), artifact.spec, x)
    _assert_agree(ours, xgboost_margins(artifact.booster_bytes(), x))


def test_values_sent_for_a_feature_the_mask_calls_missing_are_ignored(
    client: HeClient, keys: EvaluationKeys, he_models: dict[str, HeModel], artifacts: dict[str, ModelArtifact]
) -> None:
    # The server resolves missing features from the public mask alone: what the client encrypted there is unused.
    artifact = artifacts["diabetes"]
    unit = np.full(artifact.spec.n_features, 0.5)
    mask = 0b0000101
    hidden = unit.copy()
    hidden[[i for i in range(artifact.spec.n_features) if not mask >> i & 1]] = np.nan
    model = he_models["diabetes"]
    sent = client.decrypt_margin(model.evaluate(keys, client.encrypt(unit), mask))
    absent = client.decrypt_margin(model.evaluate(keys, client.encrypt(hidden), mask))
    assert sent == pytest.approx(absent, abs=1e-3)


def test_the_reply_holds_the_margin_in_every_slot(
    reply: bytes, client: HeClient, artifacts: dict[str, ModelArtifact], splits: dict[str, Split]
) -> None:
    # Nothing but the margin leaves the server: no leaf, path or partial sum sits in any slot.
    expected = path_margins(layout(artifacts["diabetes"].ensemble), splits["diabetes"].x_test[:1])[0]
    slots = client.decrypt_slots(reply)
    assert slots.shape == (PARAMETERS.slots,)
    assert np.max(np.abs(slots - expected)) <= MAX_DELTA
    assert client.decrypt_margin(reply) == pytest.approx(expected, abs=MAX_DELTA)


def test_a_batch_reply_holds_one_patients_margin_in_every_slot(
    client: HeClient,
    keys: EvaluationKeys,
    he_models: dict[str, HeModel],
    artifacts: dict[str, ModelArtifact],
    splits: dict[str, Split],
) -> None:
    # Slot s holds the margin of patient s mod 4 and nothing else; a short batch leaves the absent patients' slots
    # at the all-missing margin, which any query with an empty mask gives anyway.
    artifact = artifacts["breast"]
    x = splits["breast"].x_test[:3]
    reply = he_models["breast"].evaluate_batch(
        keys, client.encrypt_batch(artifact.spec.unit(x)), [artifact.spec.used_mask(r) for r in x]
    )
    lay = layout(artifact.ensemble)
    expected = np.concatenate([path_margins(lay, x), path_margins(lay, np.full((1, x.shape[1]), np.nan))])
    slots = client.decrypt_slots(reply).reshape(-1, BATCH_PATIENTS)
    assert np.max(np.abs(slots - expected)) <= MAX_DELTA
    assert client.decrypt_batch(reply) == pytest.approx(expected[:3], abs=MAX_DELTA)
    with pytest.raises(HeError, match="use decrypt_batch"):
        client.decrypt_margin(reply)


# ---------------------------------------------------------------------------------------------------------------
# Refusals at the trust boundary


@pytest.fixture(scope="session")
def query(client: HeClient, artifacts: dict[str, ModelArtifact], splits: dict[str, Split]) -> bytes:
    return client.encrypt(artifacts["diabetes"].spec.unit(splits["diabetes"].x_test[:1])[0])


@pytest.fixture(scope="session")
def reply(query: bytes, keys: EvaluationKeys, he_models: dict[str, HeModel]) -> bytes:
    return he_models["diabetes"].evaluate(keys, query, (1 << 7) - 1)


OTHER_PRIMES = HeParameters(16384, (40, 30, 30, 30, 30), 60)
_QUERY_MAGIC = b"pchr-he-query/2\n"


def _sections(framed: bytes, magic: bytes) -> list[bytes]:
    out, offset = [], len(magic)
    while offset < len(framed):
        (size,) = struct.unpack(">Q", framed[offset : offset + 8])
        out.append(framed[offset + 8 : offset + 8 + size])
        offset += 8 + size
    return out


def _frame(magic: bytes, sections: list[bytes]) -> bytes:
    return magic + b"".join(struct.pack(">Q", len(s)) + s for s in sections)


def _with_header(query: bytes, slots: int, n_features: int) -> bytes:
    sections = _sections(query, _QUERY_MAGIC)
    _, _, patients, rows = struct.unpack(">IIII", sections[0])
    return _frame(_QUERY_MAGIC, [struct.pack(">IIII", slots, n_features, patients, rows), *sections[1:]])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda q: b"not a query at all", "not a pchr query"),
        (lambda q: q[: len(q) // 2], "truncated"),
        (lambda q: q + b"\0", "trailing bytes"),
        (lambda q: q[:-100] + bytes(100), "does not belong to the evaluation parameters"),
        (lambda q: _with_header(q, 4096, 7), "4096 slots; the evaluation needs 8192"),
        (lambda q: _with_header(q, 8192, 30), "encodes 30 features; the model takes 7"),
        (lambda q: _frame(_QUERY_MAGIC, _sections(q, _QUERY_MAGIC)[:2]), "query is truncated"),
        (lambda q: _frame(_QUERY_MAGIC, [*_sections(q, _QUERY_MAGIC), b"x"]), "query has trailing bytes"),
        (lambda q: _frame(_QUERY_MAGIC, [b"short", *_sections(q, _QUERY_MAGIC)[1:]]), "header is malformed"),
    ],
)
def test_queries_that_do_not_fit_are_refused(
    mutate: Callable[[bytes], bytes], message: str, query: bytes, keys: EvaluationKeys, he_models: dict[str, HeModel]
) -> None:
    with pytest.raises(HeError, match=message):
        he_models["diabetes"].evaluate(keys, mutate(query), 1)


def test_a_ciphertext_from_other_parameters_is_refused(
    keys: EvaluationKeys, he_models: dict[str, HeModel], artifacts: dict[str, ModelArtifact]
) -> None:
    stranger = HeClient(parameters=OTHER_PRIMES)
    foreign = stranger.encrypt(np.zeros(artifacts["diabetes"].spec.n_features))
    with pytest.raises(HeError, match="ciphertext does not belong to the evaluation parameters"):
        he_models["diabetes"].evaluate(keys, foreign, 1)


def _query_with(client: HeClient, n_features: int, level: int, scale: float) -> bytes:
    # A well-formed query of the right parameters whose ciphertexts sit at another level or scale: what a client
    # with a different evaluation in mind would send. Built from the client's own SEAL objects.
    s = client._seal
    vectors = _he_plan.encode_features(np.zeros(n_features), n_features)
    blobs = [s.save(client._encryptor.encrypt_symmetric(s.encode(v, level, scale))) for v in vectors]
    header = struct.pack(">IIII", PARAMETERS.slots, n_features, 1, 1)
    return _frame(_QUERY_MAGIC, [header, *blobs])


def test_a_ciphertext_at_another_level_or_scale_is_refused(
    client: HeClient, keys: EvaluationKeys, he_models: dict[str, HeModel]
) -> None:
    model = he_models["diabetes"]
    with pytest.raises(HeError, match="not a fresh encryption at the top level"):
        model.evaluate(keys, _query_with(client, 7, TOP - 1, INPUT_SCALE), 1)
    with pytest.raises(HeError, match="not at the evaluation's input scale"):
        model.evaluate(keys, _query_with(client, 7, TOP, 2 * INPUT_SCALE), 1)
    assert math.isfinite(client.decrypt_margin(model.evaluate(keys, _query_with(client, 7, TOP, INPUT_SCALE), 1)))


@pytest.mark.parametrize("mask", [1 << 7, -1, 1 << 64, True, 1.0, "1"])
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


def test_batch_and_single_queries_do_not_mix(
    client: HeClient, keys: EvaluationKeys, he_models: dict[str, HeModel], query: bytes
) -> None:
    model = he_models["diabetes"]
    batch = client.encrypt_batch(np.zeros((2, 7)))
    with pytest.raises(HeError, match="packs 2 of 4 patients; this evaluation takes one patient"):
        model.evaluate(keys, batch, 1)
    with pytest.raises(HeError, match="packs 1 of 1 patients; this evaluation takes batches of 4 patients"):
        model.evaluate_batch(keys, query, [1])
    with pytest.raises(HeError, match="carries 2 patients but 3 used masks"):
        model.evaluate_batch(keys, batch, [1, 1, 1])
    with pytest.raises(HeError, match="does not fit the model's 7 features"):
        model.evaluate_batch(keys, batch, [1, 1 << 9])
    with pytest.raises(HeError, match="sequence of used masks"):
        model.evaluate_batch(keys, batch, 3)  # type: ignore[arg-type]
    with pytest.raises(HeError, match="1 to 4 rows"):
        client.encrypt_batch(np.zeros((5, 7)))


def _context_sections(context: bytes) -> list[bytes]:
    return _sections(context, b"pchr-he-context/2\n")


def test_contexts_that_do_not_fit_are_refused(client: HeClient) -> None:
    context = client.public_context()
    magic = b"pchr-he-context/2\n"
    parms, relin, galois = _context_sections(context)
    with pytest.raises(HeError, match="not a pchr context"):
        load_context(b"garbage")
    with pytest.raises(HeError, match="truncated"):
        load_context(context[:1000])
    with pytest.raises(HeError, match="parameters do not parse"):
        load_context(_frame(magic, [b"\0" * 64, relin, galois]))
    with pytest.raises(HeError, match="lacks Galois keys for rotations by 1, 2, 4"):
        load_context(_frame(magic, [parms, relin, relin]))  # the relinearization key where the Galois keys belong
    with pytest.raises(HeError, match="relinearization key is not one key"):
        load_context(_frame(magic, [parms, galois, galois]))  # and the Galois keys where it belongs
    with pytest.raises(HeError, match="relinearization key does not belong"):
        load_context(_frame(magic, [parms, b"\1" * 100, galois]))


def test_a_context_without_the_rotations_the_evaluation_needs_is_refused() -> None:
    short = HeClient(seed=SEED, rotations=(1, 2, 4, 8, 16, 32))
    with pytest.raises(HeError, match=r"lacks Galois keys for rotations by 64, 128, 256, 512, 1024, 2048, 4096$"):
        load_context(short.public_context())


def test_a_context_from_other_parameters_is_refused() -> None:
    with pytest.raises(HeError, match="coefficient modulus differs"):
        load_context(HeClient(parameters=OTHER_PRIMES).public_context())


def test_a_reply_for_another_key_or_garbage_is_refused(reply: bytes, client: HeClient) -> None:
    assert math.isfinite(client.decrypt_margin(reply))
    with pytest.raises(HeError, match="does not decrypt to margins"):
        HeClient(seed=(9,) * 8).decrypt_margin(reply)
    with pytest.raises(HeError, match="not a pchr reply"):
        client.decrypt_margin(b"pchr-he-query/2\n")
    header = struct.pack(">II", 1, 1)
    with pytest.raises(HeError, match="does not belong to the evaluation parameters"):
        client.decrypt_margin(_frame(b"pchr-he-margin/2\n", [header, b"abc"]))
    with pytest.raises(HeError, match="reply header is malformed"):
        client.decrypt_margin(_frame(b"pchr-he-margin/2\n", [struct.pack(">II", 3, 1), b"abc"]))


def test_bad_input_raises_he_error_which_lives_in_models_errors() -> None:
    assert HeError is errors.HeError
    assert issubclass(HeError, errors.ModelError)


@pytest.mark.parametrize(
    ("unit", "message"),
    [
        (np.array([0.5, 1.5]), r"unit coordinates lie in \[0, 1\]"),
        (np.zeros((2, 3)), "one row of unit coordinates"),
        (np.zeros(0), "0 unit coordinates|0 features do not fit"),
    ],
)
def test_the_client_refuses_what_it_cannot_encode(unit: np.ndarray, message: str, client: HeClient) -> None:
    with pytest.raises(HeError, match=message):
        client.encrypt(unit)


def test_encryption_is_randomized_unless_a_test_seed_is_given() -> None:
    row = np.full(7, 0.5)
    fresh = HeClient()
    assert fresh.encrypt(row) != fresh.encrypt(row)
    seeded = HeClient(seed=SEED)
    assert seeded.encrypt(row) == seeded.encrypt(row)  # why a seed is for tests only


def test_a_client_needs_a_seed_of_eight_words() -> None:
    with pytest.raises(HeError, match="eight 64-bit words"):
        HeClient(seed=(1, 2, 3))


def test_models_the_plan_cannot_hold_are_refused(artifacts: dict[str, ModelArtifact]) -> None:
    artifact = artifacts["diabetes"]
    with pytest.raises(HeError, match="trees of depth 5 exceed"):
        HeModel.from_layout(layout(artifact.ensemble, 5), artifact.spec)
    # A grid four times finer (up to 253 points): no polynomial of degree 63 separates its points closely enough.
    fine = dataclasses.replace(
        artifact.spec,
        features=tuple(
            dataclasses.replace(
                f, quantizer=Quantizer(f.quantizer.lo, f.quantizer.step / 4, 4 * f.quantizer.levels - 3)
            )
            for f in artifact.spec.features
        ),
    )
    with pytest.raises(HeError, match="the grid is too fine for the encrypted comparison"):
        HeModel.from_layout(layout(artifact.ensemble), fine)


# ---------------------------------------------------------------------------------------------------------------
# The slot plan and the sign composite


def test_parameters_are_the_documented_128_bit_set() -> None:
    assert PARAMETERS.poly_modulus_degree == 16384
    assert PARAMETERS.total_bits <= 438  # HE standard, 128-bit, N = 2^14
    # Stage 1, one prime per cubic stage, the gather, the path products, the decryption prime.
    assert len(PARAMETERS.bits) == 1 + len(_he_sign.STAGES) + 1 + 1 + 1
    assert max(PARAMETERS.bits) <= PARAMETERS.special_bits


def test_the_client_vectors_depend_on_the_features_alone() -> None:
    x = np.array([0.0, 0.25, np.nan, 1.0, 0.5])
    vectors = _he_plan.encode_features(x, 5)
    period = _he_plan.feature_period(5)
    assert period == 8
    assert len(vectors) == 2
    u = 2 * np.nan_to_num(x) - 1
    for c, v in enumerate(vectors):
        for k in range(_he_plan.SINGLE.stretches):
            j = c * _he_plan.SINGLE.stretches + k
            stretch = v[k * _he_plan.BLOCK : (k + 1) * _he_plan.BLOCK]
            real = chebyshev.chebval(u, np.eye(64)[j + 1])
            imag = chebyshev.chebval(u, np.eye(64)[j + 33]) if j + 33 < 64 else np.zeros(5)
            present = ~np.isnan(x)
            assert np.allclose(stretch[:5][present], (real + 1j * imag)[present])
            assert np.all(stretch[:5][~present] == 0)
            assert np.all(stretch[5:8] == 0)
            assert np.array_equal(stretch, np.tile(stretch[:period], _he_plan.BLOCK // period))


def test_a_batch_of_one_patient_packs_that_patient_alone() -> None:
    # Patient q of a batch sits in the slots congruent to q mod 4; absent patients are all zeros.
    x = np.array([0.25, 0.75, 1.0])
    vectors = _he_plan.encode_features(x[None], 3, _he_plan.BATCH)
    single = _he_plan.encode_features(x, 3)
    assert len(vectors) == 2 * BATCH_PATIENTS
    patient0 = np.concatenate([v.reshape(-1, BATCH_PATIENTS)[:, 0] for v in vectors])
    others = np.concatenate([v.reshape(-1, BATCH_PATIENTS)[:, 1:].ravel() for v in vectors])
    assert np.all(others == 0)
    # Pair j of patient 0 equals pair j of the single-patient vectors, threshold slot by threshold slot.
    assert np.allclose(patient0.reshape(32, -1)[:, : _he_plan.BLOCK], np.concatenate(single).reshape(32, -1))


def test_the_plan_resolves_missing_features_in_the_clear(artifacts: dict[str, ModelArtifact]) -> None:
    artifact = artifacts["breast-small"]
    p = _he_plan.plan(layout(artifact.ensemble), artifact.spec)
    keyed = np.array([k is not None for k in p.keys])
    betas, constant = _he_plan.stage1_plaintexts(p, [0])
    for beta in betas:
        stretches = beta.reshape(-1, _he_plan.BLOCK)
        assert np.all(stretches[:, keyed] == 0)  # the client's values for missing features are multiplied by 0
    assert np.all(constant.reshape(-1, _he_plan.BLOCK)[:, keyed] == -1.0)  # stage 1 is -1: the comparison is off
    full_betas, full_constant = _he_plan.stage1_plaintexts(p, [artifact.spec.full_mask])
    assert np.allclose(full_constant[: _he_plan.BLOCK][keyed], p.coefficients[keyed, 0])
    assert np.any(full_betas[0].reshape(-1, _he_plan.BLOCK)[:, keyed] != 0)
    with pytest.raises(_he_plan.PlanError, match="does not fit"):
        _he_plan.stage1_plaintexts(p, [1 << 30])


@pytest.mark.parametrize("name", MODELS)
def test_batches_evaluate_each_patient_as_alone(
    name: str, artifacts: dict[str, ModelArtifact], splits: dict[str, Split]
) -> None:
    artifact = artifacts[name]
    lay = layout(artifact.ensemble)
    single, batch = _he_plan.plan(lay, artifact.spec), _he_plan.plan(lay, artifact.spec, _he_plan.BATCH)
    x = _hide(splits[name].x_test[:4], 0.3, seed=2)
    unit, masks = artifact.spec.unit(x), [artifact.spec.used_mask(r) for r in x]
    alone = [float(_he_plan.simulate(single, unit[i], [masks[i]])[0]) for i in range(4)]
    assert _he_plan.simulate(batch, unit, masks) == pytest.approx(alone, abs=1e-9)


@settings(max_examples=25, deadline=None)
@given(levels=st.integers(2, 64), data=st.data())
def test_stage_one_separates_every_grid_within_tau1(levels: int, data: st.DataObject) -> None:
    below = data.draw(st.integers(0, levels))
    coef, tau = _he_sign.stage1_chebyshev(levels, below)
    u = 2 * np.arange(levels) / (levels - 1) - 1
    values = chebyshev.chebval(u, coef)
    target = np.where(np.arange(levels) < below, 1.0, -1.0)
    assert np.max(np.abs(values - target)) == pytest.approx(tau, abs=1e-9)
    assert tau <= _he_sign.TAU1
    assert np.sum(np.abs(coef)) < 10  # small coefficients: small noise
    dense = chebyshev.chebval(np.cos(np.linspace(0, np.pi, 2001)), coef)
    assert np.max(np.abs(dense)) < 2.5  # bounded between the grid points too
    # After the cubic stages every grid point is within the composite's bound of its sign.
    assert np.max(np.abs(_he_sign.evaluate(values) - target)) <= _he_sign.ERROR_BOUND


def test_stage_one_of_mirrored_comparisons_is_mirrored() -> None:
    a, _ = _he_sign.stage1_chebyshev(40, 9)
    b, _ = _he_sign.stage1_chebyshev(40, 31)
    u = np.linspace(-1, 1, 101)
    assert np.allclose(chebyshev.chebval(u, a), -chebyshev.chebval(-u, b), atol=1e-12)


def test_the_composite_approximates_sign_within_its_bound() -> None:
    z = np.linspace(1 - _he_sign.TAU1, 1 + _he_sign.TAU1, 10_001)
    assert np.max(np.abs(_he_sign.evaluate(z) - 1)) <= _he_sign.ERROR_BOUND
    assert np.max(np.abs(_he_sign.evaluate(-z) + 1)) <= _he_sign.ERROR_BOUND
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
