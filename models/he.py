"""Encrypted evaluation of tree ensembles over CKKS (DESIGN.md section 5, issue 4 items 3 and 5); the only module
that imports tenseal (Microsoft SEAL 4 through ``tenseal.sealapi``).

The clinician's client (:class:`HeClient`) makes a CKKS secret key, encrypts one patient's features with it and
sends the public evaluation context (relinearization keys and the Galois keys of the rotations the evaluation
uses; no public key, no secret), the query (two ciphertexts) and the public used-feature mask. The model service
(:class:`HeModel`) evaluates the whole ensemble on that query and returns one ciphertext holding the margin in
every slot and nothing else; the client decrypts it (:meth:`HeClient.decrypt_margin`) and applies the sigmoid.
Neither side learns the other's secret: the server sees ciphertexts only, the client sees the margin only, and
what the client sends depends on the feature spec (public) alone, never on the model's layout. A research cohort
under one key goes :data:`BATCH_PATIENTS` patients per query (:meth:`HeClient.encrypt_cohort`,
:meth:`HeModel.evaluate_batch`, :meth:`HeClient.decrypt_cohort`); every slot of a batch reply holds the margin of
one of its patients.

How (the slot plan is :mod:`models._he_plan`, the sign approximation :mod:`models._he_sign`):

- the client encodes ``T_1 .. T_63`` (Chebyshev polynomials) of each feature's grid coordinate, two per complex
  slot, in feature order, repeated across the slots, and encrypts the two vectors;
- stage 1: the server multiplies them by plaintexts of per-comparison coefficients (zero for a feature missing
  from the used mask, whatever the client sent), adds the products, the stretches (4 rotations) and the complex
  conjugate: every comparison of the model at once, a discrete minimax polynomial of degree 63 of its feature
  (one level). Stages 2..4, odd cubics, run on the ciphertext; the last leaves about ±1 per comparison;
- a sparse baby-step giant-step gather lays the edge indicators of every leaf's path side by side, leaf weights
  folded into its masks, nodes on missing features resolved in the clear by the constant that follows; two
  ciphertext products multiply each path; rotations sum the leaves; the base margin is added.

Parameters (:data:`PARAMETERS`): ring degree ``N = 2^14`` (8192 slots); coefficient modulus of 7 primes of 60,
60, 45, 43, 59, 59 and 25 bits plus a 60-bit special prime for key switching, 411 bits in all, within the 438
that the HomomorphicEncryption.org security standard (Albrecht et al. 2018, table 1; SEAL's
``CoeffModulus::MaxBitCount(16384, tc128)``) allows for 128-bit security with a ternary secret at ``N = 2^14``,
which SEAL checks when it builds the context. The evaluation keys (14 Galois keys and the relinearization key)
come to about 98 MB, a query to 1.6 MB, a reply to 0.26 MB. Few, large primes keep key switching cheap (its cost
grows with the square of the number of primes), which is where the time goes (``bench/he.py``: 0.38 s of one
core per query for 50 trees of depth 4, against 0.77 s with the 13 primes of 29 bits this module used before):

- a cubic stage ``c1 z + c3 z^3`` takes one 59-bit prime: ``z^3`` is formed from ``z^2`` (relinearized) times
  ``z`` before any rescaling (scale ``s^3``), ``c3`` is folded into its scale (negated, scale ``s^3 / |c3|``),
  ``c1 z`` is a product with a plaintext at scale ``s^2 / |c3|``; both terms are added, relinearized once and
  rescaled once;
- the two path products share one 60-bit prime: ``w = v rot(v)`` stays unrescaled (scale ``S_v^2``), ``u = w
  rot(w)`` is rescaled once from ``S_v^4``. Decryption is at level 0 (``q_0``, 60 bits) at scale about ``2^52``;
- every key switch (rotation, conjugation, relinearization) happens at a scale of ``2^44`` or more (stage 1
  rotates before rescaling, the gather's giant steps and the first path rotation act on unrescaled products),
  so that its noise, which grows with the largest prime present (here as large as the special prime, about
  ``2^21`` in the slots), stays below ``2^-23`` of the values.

Scales are exact at every step (Kim, Papadimitriou and Polyakov 2022, "Approximate homomorphic encryption with
reduced approximation error", CT-RSA): each plaintext is encoded at the scale that makes the terms added together
agree to the last bit, and each rescaling lands on a scale computed from the actual primes (:class:`_Scales`);
TenSEAL's high-level vectors instead reset the scale after each rescaling, an error of up to ``|q - 2^k| / 2^k``
per level. Every product is relinearized before it is rescaled. Galois keys exist for the powers of two from 1 to
4096 and for the conjugation (:data:`models._he_plan.STEPS`), no others.

Trust boundary: whatever arrives as bytes is parsed here and refused with :class:`HeError` when it does not fit
(garbage, other parameters, a wrong slot count, missing keys, a ciphertext at another level or scale, a mask
outside the model's features), before any computation. Not covered: a client that encrypts values that are no
Chebyshev features of grid points gets a meaningless margin, and, as with any scoring service, its queries reveal
the model's margins on the inputs it chooses; the evaluation adds no noise flooding, so the approximation noise
left in the reply is not proven to hide the model (circuit privacy; on what CKKS noise can leak, Li and
Micciancio 2021, "On the security of homomorphic encryption on approximate numbers", EUROCRYPT).
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import tenseal.sealapi as seal

from models import _he_plan as plan_
from models import _he_sign as sign
from models.errors import HeError
from models.features import FeatureSpec
from models.trees import Layout

__all__ = [
    "BATCH_PATIENTS",
    "PARAMETERS",
    "EvaluationKeys",
    "HeClient",
    "HeError",
    "HeModel",
    "HeParameters",
    "load_context",
]

FloatArray = npt.NDArray[np.float64]

BATCH_PATIENTS = plan_.BATCH.patients


@dataclass(frozen=True)
class HeParameters:
    """CKKS parameters: ring degree and the bit sizes of the primes."""

    poly_modulus_degree: int
    bits: tuple[int, ...]
    """Bit sizes of the data primes ``q_0 .. q_L`` (decryption prime first)."""
    special_bits: int

    @property
    def slots(self) -> int:
        return self.poly_modulus_degree // 2

    @property
    def top(self) -> int:
        return len(self.bits) - 1

    @property
    def total_bits(self) -> int:
        return sum(self.bits) + self.special_bits


PARAMETERS = HeParameters(16384, (60, 60, 45, 43, 59, 59, 25), 60)

# Levels: the query arrives at TOP; stage 1 lands one lower; each cubic stage takes one level; the gather one; the
# path products one.
TOP = PARAMETERS.top
LEVEL_STAGES = tuple(range(TOP - 1, TOP - 1 - len(sign.STAGES), -1))
"""The level each cubic stage starts at."""
LEVEL_GATHER = LEVEL_STAGES[-1] - 1
LEVEL_PATH = LEVEL_GATHER - 1
if LEVEL_PATH != 1 or PARAMETERS.slots != plan_.SLOTS or not all(c1 > 0 > c3 for c1, c3 in sign.STAGES):
    raise AssertionError("the depth budget does not match the evaluation")

INPUT_SCALE = 2.0**30
"""Scale of the client's ciphertexts (values ``|T_j + i T_{j+32}| <= sqrt(2)``)."""
STAGE1_SCALE = 2.0**24
"""Scale of the stage-1 coefficient plaintexts."""
PATH_SCALE = 2.0**28
"""Scale of path space after the gather."""
REPLY_SPREAD = 0.05
"""Largest spread of a patient's slots that the client accepts in a reply (CKKS noise is about 1e-4)."""
_CONTEXT_MAGIC = b"pchr-he-context/2\n"
_QUERY_MAGIC = b"pchr-he-query/2\n"
_REPLY_MAGIC = b"pchr-he-margin/2\n"
_MAX_SECTION = 1 << 30
_PER_MASK_CACHE = 16
_TMP = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - a RAM-backed scratch directory, when present


@dataclass(frozen=True)
class _Scales:
    """The exact scale at every step, from the actual primes (see the module docstring)."""

    stages: tuple[float, ...]
    """Input scale of each cubic stage; ``stages[-1]`` is also the input of the gather."""
    coefficient: tuple[float, ...]
    """Plaintext scale of ``c1`` in each cubic stage: ``s^2 / |c3|``."""
    gather: float
    """Plaintext scale of the gather masks, so that path space lands exactly on :data:`PATH_SCALE`."""
    output: float
    """Scale of the reply."""

    @classmethod
    def of(cls, primes: Sequence[int]) -> _Scales:
        s = INPUT_SCALE * STAGE1_SCALE / primes[TOP]
        stages, coefficient = [], []
        for (_, c3), level in zip(sign.STAGES, LEVEL_STAGES, strict=True):
            stages.append(s)
            coefficient.append(s * s / abs(c3))
            s = s**3 / (abs(c3) * primes[level])
        stages.append(s)
        out = cls(tuple(stages), tuple(coefficient), PATH_SCALE * primes[LEVEL_GATHER] / s, PATH_SCALE**4 / primes[1])
        # Headroom: stages at about 2^29, key switches at 2^44 or more, masks precise, margins (and the partial sums
        # of the final rotations) within ±64.
        if not (
            all(2.0**27 <= x <= 2.0**31 for x in out.stages[:-1])
            and out.stages[-1] >= 2.0**44
            and out.gather >= 2.0**24
            and out.output * 2.0**7 <= primes[0]
        ):
            raise AssertionError(f"the parameters do not give the evaluation its scales: {out}")
        return out


class _Seal:
    """A SEAL context for one parameter set, its levels, exact scales, and serialisation through files."""

    def __init__(self, p: HeParameters = PARAMETERS, seed: Sequence[int] | None = None) -> None:
        self.parameters = p
        parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
        parms.set_poly_modulus_degree(p.poly_modulus_degree)
        try:
            parms.set_coeff_modulus(seal.CoeffModulus.Create(p.poly_modulus_degree, [*p.bits, p.special_bits]))
            if seed is not None:
                if len(seed) != 8 or not all(isinstance(w, int) and 0 <= w < 1 << 64 for w in seed):
                    raise HeError("a seed is eight 64-bit words")
                parms.set_random_generator(seal.Blake2xbPRNGFactory(list(seed)))
            self.context = seal.SEALContext(parms, True, seal.SEC_LEVEL_TYPE.TC128)
        except HeError:
            raise
        except Exception as exc:
            raise HeError(f"SEAL refuses the parameters ({exc})") from exc
        self.parms = parms
        if not self.context.parameters_set():
            raise HeError(f"SEAL refuses the parameters: {self.context.parameters_error_message()}")
        self.encoder = seal.CKKSEncoder(self.context)
        self.evaluator = seal.Evaluator(self.context)
        self.primes = [int(m.value()) for m in parms.coeff_modulus()[: len(p.bits)]]
        data = self.context.first_context_data()
        self.parms_ids: dict[int, Any] = {}
        while data is not None:
            self.parms_ids[data.chain_index()] = data.parms_id()
            data = data.next_context_data()
        if sorted(self.parms_ids) != list(range(len(p.bits))):
            raise AssertionError("unexpected modulus chain")

    @cached_property
    def scales(self) -> _Scales:
        return _Scales.of(self.primes)

    def level(self, ct: Any) -> int:
        return int(self.context.get_context_data(ct.parms_id()).chain_index())

    def encode(self, values: npt.ArrayLike | float, level: int, scale: float) -> Any:
        pt = seal.Plaintext()
        if isinstance(values, float | int):
            self.encoder.encode(float(values), self.parms_ids[level], scale, pt)
        else:
            self.encoder.encode(np.asarray(values).tolist(), self.parms_ids[level], scale, pt)
        return pt

    def save(self, obj: Any) -> bytes:
        with tempfile.TemporaryDirectory(prefix="pchr-he-", dir=_TMP) as tmp:
            path = os.path.join(tmp, "blob")
            obj.save(path)
            return Path(path).read_bytes()

    def load(self, factory: Callable[[], Any], data: bytes, what: str) -> Any:
        obj = factory()
        with tempfile.TemporaryDirectory(prefix="pchr-he-", dir=_TMP) as tmp:
            path = os.path.join(tmp, "blob")
            Path(path).write_bytes(data)
            try:
                obj.load(self.context, path)
            except Exception as exc:  # SEAL reports every malformed or foreign blob as some exception
                raise HeError(
                    f"the {what} does not belong to the evaluation parameters ({type(exc).__name__})"
                ) from exc
        return obj

    def galois_elements(self, steps: Sequence[int] = plan_.STEPS) -> list[int]:
        tool = self.context.key_context_data().galois_tool()
        return [int(tool.get_elt_from_step(step)) for step in steps] + [self.conjugation]

    @property
    def conjugation(self) -> int:
        return 2 * self.parameters.poly_modulus_degree - 1


def _frame(magic: bytes, sections: Sequence[bytes]) -> bytes:
    return magic + b"".join(struct.pack(">Q", len(s)) + s for s in sections)


def _unframe(data: bytes, magic: bytes, what: str) -> list[bytes]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise HeError(f"the {what} must be bytes")
    view = bytes(data)
    if not view.startswith(magic):
        raise HeError(f"not a pchr {what} (bad header)")
    offset = len(magic)
    out = []
    while offset < len(view):
        if offset + 8 > len(view):
            raise HeError(f"the {what} has trailing bytes")
        (size,) = struct.unpack(">Q", view[offset : offset + 8])
        offset += 8
        if size > _MAX_SECTION or offset + size > len(view):
            raise HeError(f"the {what} is truncated")
        out.append(view[offset : offset + size])
        offset += size
    return out


def _sections(data: bytes, magic: bytes, count: int, what: str) -> list[bytes]:
    out = _unframe(data, magic, what)
    if len(out) < count:
        raise HeError(f"the {what} is truncated")
    if len(out) > count:
        raise HeError(f"the {what} has trailing bytes")
    return out


# ---------------------------------------------------------------------------------------------------------------
# Client


class HeClient:
    """The clinician's side: the secret key, encryption of feature vectors, decryption of margins.

    ``seed`` (eight 64-bit words) makes keys and ciphertexts reproducible for tests only: every random draw then
    repeats (SEAL's seeded generator hands each use the same stream), so encryption becomes deterministic and the
    key material repetitive (its serialized keys compress to a third); leave it out otherwise. ``parameters``
    other than :data:`PARAMETERS`, or ``rotations`` other than the evaluation's (:data:`models._he_plan.STEPS`),
    make a client the model service refuses (for tests).
    """

    def __init__(
        self,
        *,
        seed: Sequence[int] | None = None,
        parameters: HeParameters = PARAMETERS,
        rotations: Sequence[int] = plan_.STEPS,
    ) -> None:
        self._seal = _Seal(parameters, seed)
        self._rotations = tuple(rotations)
        self._keygen = seal.KeyGenerator(self._seal.context)
        self._secret = self._keygen.secret_key()
        self._encryptor = seal.Encryptor(self._seal.context, self._secret)
        self._decryptor = seal.Decryptor(self._seal.context, self._secret)

    @cached_property
    def _public_context(self) -> bytes:
        s = self._seal
        relin = self._keygen.create_relin_keys()
        galois = self._keygen.create_galois_keys(s.galois_elements(self._rotations))
        return _frame(_CONTEXT_MAGIC, [s.save(s.parms), s.save(relin), s.save(galois)])

    def public_context(self) -> bytes:
        """Parameters, relinearization keys and the Galois keys the evaluation needs (made once)."""
        return self._public_context

    def encrypt(self, unit_vector: npt.ArrayLike) -> bytes:
        """One patient's features in unit coordinates (NaN = missing), encrypted under the secret key."""
        x = np.asarray(unit_vector, dtype=np.float64)
        if x.ndim != 1:
            raise HeError(f"encrypt takes one row of unit coordinates, not shape {x.shape}")
        return self._query(x[None], plan_.SINGLE)

    def encrypt_batch(self, rows: npt.ArrayLike) -> bytes:
        """Up to :data:`BATCH_PATIENTS` patients' rows of unit coordinates in one query."""
        x = np.asarray(rows, dtype=np.float64)
        if x.ndim != 2 or not 1 <= x.shape[0] <= BATCH_PATIENTS:
            raise HeError(f"a batch query takes 1 to {BATCH_PATIENTS} rows of unit coordinates, not shape {x.shape}")
        return self._query(x, plan_.BATCH)

    def encrypt_cohort(self, rows: npt.ArrayLike) -> list[bytes]:
        """A cohort's rows of unit coordinates as batch queries of :data:`BATCH_PATIENTS` patients (the last may
        hold fewer)."""
        x = np.asarray(rows, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] == 0:
            raise HeError(f"a cohort is a non-empty table of unit coordinates, not shape {x.shape}")
        return [self.encrypt_batch(x[i : i + BATCH_PATIENTS]) for i in range(0, x.shape[0], BATCH_PATIENTS)]

    def _query(self, x: FloatArray, packing: plan_.Packing) -> bytes:
        s = self._seal
        if s.parameters.slots != plan_.SLOTS:
            raise HeError(f"the slot plan needs {plan_.SLOTS} slots; these parameters give {s.parameters.slots}")
        try:
            vectors = plan_.encode_features(x, x.shape[1], packing)
        except plan_.PlanError as exc:
            raise HeError(str(exc)) from exc
        top = s.parameters.top
        blobs = []
        for v in vectors:
            pt = s.encode(v, top, INPUT_SCALE)
            blobs.append(s.save(self._encryptor.encrypt_symmetric(pt)))  # seeded: half the size of a public-key one
        header = struct.pack(">IIII", s.parameters.slots, x.shape[1], packing.patients, x.shape[0])
        return _frame(_QUERY_MAGIC, [header, *blobs])

    def decrypt_slots(self, reply: bytes) -> FloatArray:
        """Every slot of a reply (each holds a patient's margin, up to CKKS noise)."""
        return self._decrypt(reply)[0]

    def decrypt_margin(self, reply: bytes) -> float:
        """The margin in a reply from :meth:`HeModel.evaluate`: the mean of its slots, which must all hold about
        the same value."""
        slots, patients, _ = self._decrypt(reply)
        if patients != 1:
            raise HeError("a batch reply holds several margins; use decrypt_batch")
        return float(_margins(slots, 1, 1)[0])

    def decrypt_batch(self, reply: bytes) -> FloatArray:
        """The margins in a reply from :meth:`HeModel.evaluate_batch`, one per patient of the query."""
        slots, patients, rows = self._decrypt(reply)
        return _margins(slots, patients, rows)

    def decrypt_cohort(self, replies: Sequence[bytes]) -> FloatArray:
        """The margins of a cohort, in the order of :meth:`encrypt_cohort`."""
        return np.concatenate([self.decrypt_batch(r) for r in replies]) if replies else np.zeros(0)

    def _decrypt(self, reply: bytes) -> tuple[FloatArray, int, int]:
        header, blob = _sections(reply, _REPLY_MAGIC, 2, "reply")
        if len(header) != 8:
            raise HeError("the reply header is malformed")
        patients, rows = struct.unpack(">II", header)
        if patients not in (1, BATCH_PATIENTS) or not 1 <= rows <= patients:
            raise HeError("the reply header is malformed")
        s = self._seal
        ct = s.load(seal.Ciphertext, blob, "reply")
        pt = seal.Plaintext()
        self._decryptor.decrypt(ct, pt)
        return np.array(s.encoder.decode_double(pt), dtype=np.float64), patients, rows


def _margins(slots: FloatArray, patients: int, rows: int) -> FloatArray:
    if slots.shape != (plan_.SLOTS,):
        raise HeError("the reply does not decrypt to margins (another key, or not an evaluation result)")
    per_patient = slots.reshape(-1, patients)[:, :rows]
    if not np.all(np.isfinite(per_patient)) or np.any(np.ptp(per_patient, axis=0) > REPLY_SPREAD):
        raise HeError("the reply does not decrypt to margins (another key, or not an evaluation result)")
    return np.asarray(per_patient.mean(axis=0), dtype=np.float64)


# ---------------------------------------------------------------------------------------------------------------
# Server


@dataclass(frozen=True)
class EvaluationKeys:
    """A client's relinearization and Galois keys, loaded and checked once per session."""

    relin: Any
    galois: Any
    digest: bytes
    """SHA-256 of the context bytes, a name for the session."""


_SERVER: _Seal | None = None


def _server() -> _Seal:
    global _SERVER
    if _SERVER is None:
        _SERVER = _Seal()
    return _SERVER


def load_context(context: bytes) -> EvaluationKeys:
    """Parse and check a client's public context (:meth:`HeClient.public_context`)."""
    params_blob, relin_blob, galois_blob = _sections(context, _CONTEXT_MAGIC, 3, "context")
    s = _server()
    parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
    with tempfile.TemporaryDirectory(prefix="pchr-he-", dir=_TMP) as tmp:
        path = os.path.join(tmp, "parms")
        Path(path).write_bytes(params_blob)
        try:
            parms.load(path)
        except Exception as exc:
            raise HeError(f"the context's parameters do not parse ({type(exc).__name__})") from exc
    if parms.scheme() != seal.SCHEME_TYPE.CKKS:
        raise HeError("the context is not for CKKS")
    slots = parms.poly_modulus_degree() // 2
    if slots != PARAMETERS.slots:
        raise HeError(f"the context has {slots} slots; the evaluation needs {PARAMETERS.slots}")
    primes = [m.value() for m in parms.coeff_modulus()]
    if primes != [m.value() for m in s.parms.coeff_modulus()]:
        raise HeError("the context's coefficient modulus differs from the evaluation parameters")
    relin = s.load(seal.RelinKeys, relin_blob, "relinearization key")
    if relin.size() != 1 or not relin.has_key(2):
        raise HeError("the context's relinearization key is not one key for the square of the secret")
    galois = s.load(seal.GaloisKeys, galois_blob, "Galois key set")
    missing = [
        "conjugation" if elt == s.conjugation else str(step)
        for step, elt in zip([*plan_.STEPS, 0], s.galois_elements(), strict=True)
        if not galois.has_key(elt)
    ]
    if missing:
        raise HeError(f"the context lacks Galois keys for rotations by {', '.join(missing)}")
    return EvaluationKeys(relin, galois, hashlib.sha256(bytes(context)).digest())


@dataclass(frozen=True)
class _Encoded:
    """A plan and its per-model plaintexts, for one packing."""

    plan: plan_.Plan
    gather: tuple[tuple[tuple[int, Any], ...], ...]
    base: Any


@dataclass(frozen=True)
class _PerMask:
    """What depends on the patients' used masks, encoded."""

    betas: tuple[Any, ...]
    constant: Any
    path: Any
    path_rotated: Any


class HeModel:
    """The model service's side: one ensemble, planned and its plaintexts encoded once, evaluated per query.

    Not thread-safe (it caches encoded plaintexts per used mask); give each worker its own.
    """

    def __init__(self, p: plan_.Plan, batch: plan_.Plan | None = None) -> None:
        if p.packing != plan_.SINGLE or (batch is not None and batch.packing != plan_.BATCH):
            raise AssertionError("a model needs a single-patient plan (and optionally a batch plan)")
        self._seal = _server()
        self.plan = p
        self._single = self._encode_plan(p)
        self._batch_plan = batch
        self._per_mask: OrderedDict[tuple[int, ...], _PerMask] = OrderedDict()
        s = self._seal
        self._c1 = tuple(
            s.encode(c1, level, scale)
            for (c1, _), level, scale in zip(sign.STAGES, LEVEL_STAGES, s.scales.coefficient, strict=True)
        )

    @classmethod
    def from_layout(cls, lay: Layout, spec: FeatureSpec) -> HeModel:
        """Plan a layout for encrypted evaluation; :class:`HeError` when the model does not fit the slots.

        The batch plan (:meth:`evaluate_batch`) is made too when the model fits :data:`BATCH_PATIENTS` patients
        per query (at most 512 reachable leaves).
        """
        try:
            single = plan_.plan(lay, spec)
        except plan_.PlanError as exc:
            raise HeError(str(exc)) from exc
        try:
            batch: plan_.Plan | None = plan_.plan(lay, spec, plan_.BATCH)
        except plan_.PlanError:
            batch = None
        return cls(single, batch)

    @property
    def n_features(self) -> int:
        return self.plan.n_features

    def evaluate(self, context: bytes | EvaluationKeys, ciphertext: bytes, used_mask: int) -> bytes:
        """The encrypted margin for one query: a reply for :meth:`HeClient.decrypt_margin`."""
        keys = context if isinstance(context, EvaluationKeys) else load_context(context)
        self._check_mask(used_mask)
        cts, _ = self._query(ciphertext, plan_.SINGLE)
        result = self._run(self._single, cts, keys, (used_mask,))
        return _frame(_REPLY_MAGIC, [struct.pack(">II", 1, 1), self._seal.save(result)])

    def evaluate_batch(self, context: bytes | EvaluationKeys, ciphertext: bytes, used_masks: Sequence[int]) -> bytes:
        """The encrypted margins of a batch query (:meth:`HeClient.encrypt_batch`), one used mask per patient."""
        keys = context if isinstance(context, EvaluationKeys) else load_context(context)
        encoded = self._batch
        if not isinstance(used_masks, Sequence) or isinstance(used_masks, str | bytes):
            raise HeError("a batch query takes a sequence of used masks, one per patient")
        for mask in used_masks:
            self._check_mask(mask)
        cts, rows = self._query(ciphertext, plan_.BATCH)
        if rows != len(used_masks):
            raise HeError(f"the query carries {rows} patients but {len(used_masks)} used masks came with it")
        result = self._run(encoded, cts, keys, tuple(used_masks))
        return _frame(_REPLY_MAGIC, [struct.pack(">II", BATCH_PATIENTS, rows), self._seal.save(result)])

    @cached_property
    def _batch(self) -> _Encoded:
        if self._batch_plan is None:
            raise HeError(
                f"the model has {self.plan.leaves} reachable leaves; batch queries hold models of at most "
                f"{plan_.BATCH.positions}"
            )
        return self._encode_plan(self._batch_plan)

    def _check_mask(self, used_mask: object) -> None:
        if not isinstance(used_mask, int) or isinstance(used_mask, bool) or not 0 <= used_mask < 1 << self.n_features:
            raise HeError(f"the used mask {used_mask!r} does not fit the model's {self.n_features} features")

    def _encode_plan(self, p: plan_.Plan) -> _Encoded:
        s = self._seal
        rows = tuple(
            tuple((b, s.encode(mask, LEVEL_GATHER, s.scales.gather)) for b, mask in row) for row in p.gather_rows
        )
        return _Encoded(p, rows, s.encode(p.base_margin, 0, s.scales.output))

    # -- parsing ---------------------------------------------------------------------------------------------

    def _query(self, ciphertext: bytes, packing: plan_.Packing) -> tuple[list[Any], int]:
        sections = _unframe(ciphertext, _QUERY_MAGIC, "query")
        if not sections or len(sections[0]) != 16:
            raise HeError("the query header is malformed")
        slots, n_features, patients, rows = struct.unpack(">IIII", sections[0])
        if slots != PARAMETERS.slots:
            raise HeError(f"the query has {slots} slots; the evaluation needs {PARAMETERS.slots}")
        if n_features != self.n_features:
            raise HeError(f"the query encodes {n_features} features; the model takes {self.n_features}")
        if patients != packing.patients or not 1 <= rows <= patients:
            kind = "one patient" if packing.patients == 1 else f"batches of {packing.patients} patients"
            raise HeError(f"the query packs {rows} of {patients} patients; this evaluation takes {kind}")
        if len(sections) - 1 < packing.ciphertexts:
            raise HeError("the query is truncated")
        if len(sections) - 1 > packing.ciphertexts:
            raise HeError("the query has trailing bytes")
        s = self._seal
        cts = []
        for blob in sections[1:]:
            ct = s.load(seal.Ciphertext, blob, "ciphertext")
            if ct.size() != 2 or s.level(ct) != TOP:
                raise HeError("the ciphertext is not a fresh encryption at the top level")
            if not math.isclose(ct.scale, INPUT_SCALE, rel_tol=1e-9):
                raise HeError("the ciphertext is not at the evaluation's input scale")
            ct.scale = INPUT_SCALE
            cts.append(ct)
        return cts, rows

    # -- evaluation ------------------------------------------------------------------------------------------

    def _run(self, encoded: _Encoded, cts: Sequence[Any], keys: EvaluationKeys, masks: tuple[int, ...]) -> Any:
        s, ev, g = self._seal, self._seal.evaluator, keys.galois
        p, packing = encoded.plan, encoded.plan.packing
        per = self._mask_plaintexts(p, masks)
        # Stage 1: coefficient plaintexts times the client's vectors, the stretches and the conjugate added; all
        # rotations before rescaling (at scale 2^54).
        z = seal.Ciphertext()
        ev.multiply_plain(cts[0], per.betas[0], z)
        for ct, beta in zip(cts[1:], per.betas[1:], strict=True):
            term = seal.Ciphertext()
            ev.multiply_plain(ct, beta, term)
            ev.add_inplace(z, term)
        for step in packing.block_steps:
            ev.add_inplace(z, self._rotate(z, step, g))
        conjugate = seal.Ciphertext()
        ev.complex_conjugate(z, g, conjugate)
        ev.add_inplace(z, conjugate)
        ev.add_plain_inplace(z, per.constant)
        z = self._rescale(z, s.scales.stages[0])
        for coef, scale, c1 in zip(sign.STAGES, s.scales.stages[1:], self._c1, strict=True):
            z = self._cubic(z, coef[1], c1, scale, keys)
        # Gather into path space (unrescaled): baby rotations by Q, products with the masks, giant rotations.
        babies = [z]
        for _ in range(1, p.baby):
            babies.append(self._rotate(babies[-1], packing.patients, g))
        acc: Any = None
        for row in reversed(encoded.gather):
            if acc is not None:
                acc = self._rotate(acc, p.baby * packing.patients, g)
            for b, pt in row:
                term = seal.Ciphertext()
                ev.multiply_plain(babies[b], pt, term)
                if acc is None:
                    acc = term
                else:
                    ev.add_inplace(acc, term)
        if acc is None:
            raise AssertionError("a plan without comparisons reached the evaluator")
        _pin(acc, PATH_SCALE * s.primes[LEVEL_GATHER])
        # Path products: factors 2048 slots apart, then pairs 4096 apart; one rescaling for both.
        turned = self._rotate(acc, plan_.DEPTH_STEP, g)
        v = self._rescale(acc, PATH_SCALE)
        ev.add_plain_inplace(v, per.path)
        turned = self._rescale(turned, PATH_SCALE)
        ev.add_plain_inplace(turned, per.path_rotated)
        w = self._multiply(v, turned, keys)
        u = self._multiply(w, self._rotate(w, 2 * plan_.DEPTH_STEP, g), keys)
        u = self._rescale(u, s.scales.output)
        for step in packing.sum_steps:
            ev.add_inplace(u, self._rotate(u, step, g))
        ev.add_plain_inplace(u, encoded.base)
        return u

    def _cubic(self, z: Any, c3: float, c1: Any, scale: float, keys: EvaluationKeys) -> Any:
        """``c1 z + c3 z^3`` (``c3 < 0``) with one rescaling: ``z^3`` relabelled to carry ``c3``, ``c1 z`` a
        plaintext product at the same scale, added, relinearized once."""
        ev = self._seal.evaluator
        square = self._multiply(z, z, keys)
        cube = seal.Ciphertext()
        ev.multiply(square, z, cube)
        ev.negate_inplace(cube)
        linear = seal.Ciphertext()
        ev.multiply_plain(z, c1, linear)
        cube.scale = cube.scale / abs(c3)  # the negated z^3 now stands for c3 z^3
        _pin(linear, cube.scale)
        ev.add_inplace(cube, linear)
        ev.relinearize_inplace(cube, keys.relin)
        return self._rescale(cube, scale)

    def _mask_plaintexts(self, p: plan_.Plan, masks: tuple[int, ...]) -> _PerMask:
        """Stage-1 coefficients and constants and the path constant for the patients' used masks (the most recent
        single-patient masks cached)."""
        single = p.packing == plan_.SINGLE
        if single:
            cached = self._per_mask.get(masks)
            if cached is not None:
                self._per_mask.move_to_end(masks)
                return cached
        s = self._seal
        betas, constant = plan_.stage1_plaintexts(p, masks)
        path = plan_.path_constant(p, masks)
        raw = INPUT_SCALE * STAGE1_SCALE
        entry = _PerMask(
            tuple(s.encode(b, TOP, STAGE1_SCALE) for b in betas),
            s.encode(constant, TOP, raw),
            s.encode(path, LEVEL_PATH, PATH_SCALE),
            s.encode(np.roll(path, -plan_.DEPTH_STEP), LEVEL_PATH, PATH_SCALE),
        )
        if single:
            self._per_mask[masks] = entry
            if len(self._per_mask) > _PER_MASK_CACHE:
                self._per_mask.popitem(last=False)
        return entry

    # -- primitives with exact scales ------------------------------------------------------------------------

    def _multiply(self, a: Any, b: Any, keys: EvaluationKeys) -> Any:
        """Product of two ciphertexts at one level, relinearized, not rescaled."""
        out = seal.Ciphertext()
        self._seal.evaluator.multiply(a, b, out)
        self._seal.evaluator.relinearize_inplace(out, keys.relin)
        return out

    def _rescale(self, ct: Any, scale: float) -> Any:
        """Divide by the level's last prime, landing on ``scale`` (which it may miss by rounding only)."""
        out = seal.Ciphertext()
        self._seal.evaluator.rescale_to_next(ct, out)
        _pin(out, scale)
        return out

    def _rotate(self, ct: Any, step: int, galois: Any) -> Any:
        out = seal.Ciphertext()
        self._seal.evaluator.rotate_vector(ct, step, galois, out)
        return out


def _pin(ct: Any, scale: float) -> None:
    """Set a ciphertext's scale to the exact value it stands for, which it may miss by rounding only."""
    if not math.isclose(ct.scale, scale, rel_tol=1e-9):
        raise AssertionError(f"scale {ct.scale!r} strays from the expected {scale!r}")
    ct.scale = scale
