"""Encrypted evaluation of tree ensembles over CKKS (DESIGN.md section 5, issue 4 item 3); the only module that
imports tenseal (Microsoft SEAL 4 through ``tenseal.sealapi``).

The clinician's client (:class:`HeClient`) makes a CKKS secret key, encrypts one patient's features with it and
sends the public evaluation context (relinearization keys and the Galois keys of the seven rotations the
evaluation uses; no public key, no secret), the ciphertext and the public used-feature mask. The model service
(:class:`HeModel`) evaluates the whole ensemble on that one ciphertext and returns one ciphertext holding the
margin in every slot and nothing else; the client decrypts it (:meth:`HeClient.decrypt_margin`) and applies the
sigmoid. Neither side learns the other's secret: the server sees ciphertexts only, the client sees the margin
only, and what the client sends depends on the feature spec (public) alone, never on the model's layout.

How (the slot plan is :mod:`models._he_plan`, the sign approximation :mod:`models._he_sign`):

- the client encodes ``T_1 .. T_15`` (Chebyshev polynomials) of each feature's unit coordinate, in feature order,
  repeated across the slots, and encrypts that one vector;
- the server evaluates every comparison of the model at once with a composite odd polynomial for ``sign`` (Lee,
  Lee, Kim, Kim, No and Kang 2021; Cheon, Kim and Kim 2020) of degrees 15, 3, 7, 7: the first stage is a
  plaintext linear combination of the ``T_j`` (one level), the others run on ciphertexts; they yield go-left
  indicators ``b``. Comparisons on features missing from the public mask are resolved in the clear at no depth;
- a sparse baby-step giant-step gather (rotations at the lowest levels, where they are cheap) lays the edge
  indicators of every leaf's path side by side, leaf weights folded in; two ciphertext products multiply each
  path; rotations sum the leaves; the base margin is added. Every slot then holds the margin.

Parameters (:data:`PARAMETERS`): ring degree ``N = 2^14`` (8192 slots); coefficient modulus of 13 primes of 38,
29, 28, 9 x 29 and 21 bits plus a 60-bit special prime for key switching, 437 bits in all, within the 438 that
the HomomorphicEncryption.org security standard (Albrecht et al. 2018, table 1; SEAL's
``CoeffModulus::MaxBitCount(16384, tc128)``) allows for 128-bit security with a ternary secret at ``N = 2^14``,
which SEAL checks when it builds the context. Depth budget 12: stage 1 (1), stages 2..4 (2 + 3 + 3), the gather
(1), the two path products (2). Scales are exact per level (Kim, Papadimitriou and Polyakov 2022, "Approximate
homomorphic encryption with reduced approximation error", CT-RSA): level ``l`` holds scale ``S_l`` with
``S_{l-1} = S_l^2 / q_l``, chosen from the bottom (``S_0 = 2^31``) upwards, so that products, rescalings and
additions never mix scales that differ (TenSEAL's high-level vectors instead reset the scale after each
rescaling, an error of up to ``|q - 2^k| / 2^k`` per level). ``S_l`` is ``2^29`` on the levels of the sign stages
and the products and ``2^24.9`` for the fresh ciphertext, whose values (``|T_j| <= 1``) need the least precision.
Every product is relinearized before it is rescaled; terms landing on one level share one rescaling. Galois keys
exist for the seven rotation steps the evaluation uses (:data:`models._he_plan.STEPS`), no others.

Trust boundary: whatever arrives as bytes is parsed here and refused with :class:`HeError` when it does not fit
(garbage, other parameters, a wrong slot count, missing keys, a ciphertext at another level or scale, a mask
outside the model's features). Not covered: a client that encrypts values that are no Chebyshev features of grid
points gets a meaningless margin, and, as with any scoring service, its queries reveal the model's margins on the
inputs it chooses; the evaluation adds no noise flooding, so the approximation noise left in the reply is not
proven to hide the model (circuit privacy; on what CKKS noise can leak, Li and Micciancio 2021, "On the security
of homomorphic encryption on approximate numbers", EUROCRYPT).
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
from models.errors import ModelError
from models.features import FeatureSpec
from models.trees import Layout

__all__ = [
    "PARAMETERS",
    "EvaluationKeys",
    "HeClient",
    "HeError",
    "HeModel",
    "HeParameters",
    "load_context",
]

FloatArray = npt.NDArray[np.float64]


class HeError(ModelError):
    """Input the encrypted evaluator refuses: bytes that do not parse, other parameters, a mask that does not fit."""


@dataclass(frozen=True)
class HeParameters:
    """CKKS parameters and the exact scale of every level."""

    poly_modulus_degree: int
    bits: tuple[int, ...]
    """Bit sizes of the data primes ``q_0 .. q_L`` (decryption prime first)."""
    special_bits: int
    bottom_scale_bits: int

    @property
    def slots(self) -> int:
        return self.poly_modulus_degree // 2

    @property
    def top(self) -> int:
        return len(self.bits) - 1

    @property
    def total_bits(self) -> int:
        return sum(self.bits) + self.special_bits


PARAMETERS = HeParameters(16384, (38, 29, 28, 29, 29, 29, 29, 29, 29, 29, 29, 29, 21), 60, 31)


def _depth(degree: int) -> int:
    """Multiplicative depth of a polynomial of this degree: ``ceil(log2(degree + 1))``."""
    return degree.bit_length()


LEVEL_STAGE1 = PARAMETERS.top - 1
LEVEL_SIGN = LEVEL_STAGE1 - sum(_depth(d) for d in sign.DEGREES[1:])
LEVEL_GATHER = LEVEL_SIGN - 1
if LEVEL_GATHER != 2 or PARAMETERS.slots != plan_.SLOTS:
    raise AssertionError("the depth budget does not match the evaluation")

REPLY_SPREAD = 0.05
"""Largest spread of a reply's slots that :meth:`HeClient.decrypt_margin` accepts (CKKS noise is about 1e-3)."""
_CONTEXT_MAGIC = b"pchr-he-context/1\n"
_QUERY_MAGIC = b"pchr-he-query/1\n"
_REPLY_MAGIC = b"pchr-he-margin/1\n"
_MAX_SECTION = 1 << 30


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
        # S_0 = 2^bottom, S_l = sqrt(q_l S_{l-1}): each rescaling lands exactly on the next level's scale.
        scales = [2.0**p.bottom_scale_bits]
        for q in self.primes[1:]:
            scales.append(math.sqrt(q * scales[-1]))
        self.scales = scales

    def level(self, ct: Any) -> int:
        return int(self.context.get_context_data(ct.parms_id()).chain_index())

    def encode(self, values: npt.ArrayLike | float, level: int, scale: float) -> Any:
        pt = seal.Plaintext()
        if isinstance(values, float | int):
            self.encoder.encode(float(values), self.parms_ids[level], scale, pt)
        else:
            self.encoder.encode(np.asarray(values, dtype=np.float64).tolist(), self.parms_ids[level], scale, pt)
        return pt

    def save(self, obj: Any) -> bytes:
        with tempfile.TemporaryDirectory(prefix="pchr-he-") as tmp:
            path = os.path.join(tmp, "blob")
            obj.save(path)
            return Path(path).read_bytes()

    def load(self, factory: Callable[[], Any], data: bytes, what: str) -> Any:
        obj = factory()
        with tempfile.TemporaryDirectory(prefix="pchr-he-") as tmp:
            path = os.path.join(tmp, "blob")
            Path(path).write_bytes(data)
            try:
                obj.load(self.context, path)
            except Exception as exc:  # SEAL reports every malformed or foreign blob as some exception
                raise HeError(
                    f"the {what} does not belong to the evaluation parameters ({type(exc).__name__})"
                ) from exc
        return obj

    def galois_elements(self) -> list[int]:
        tool = self.context.key_context_data().galois_tool()
        return [int(tool.get_elt_from_step(step)) for step in plan_.STEPS]


def _frame(magic: bytes, sections: Sequence[bytes]) -> bytes:
    return magic + b"".join(struct.pack(">Q", len(s)) + s for s in sections)


def _unframe(data: bytes, magic: bytes, count: int, what: str) -> list[bytes]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise HeError(f"the {what} must be bytes")
    view = bytes(data)
    if not view.startswith(magic):
        raise HeError(f"not a pchr {what} (bad header)")
    offset = len(magic)
    out = []
    for _ in range(count):
        if offset + 8 > len(view):
            raise HeError(f"the {what} is truncated")
        (size,) = struct.unpack(">Q", view[offset : offset + 8])
        offset += 8
        if size > _MAX_SECTION or offset + size > len(view):
            raise HeError(f"the {what} is truncated")
        out.append(view[offset : offset + size])
        offset += size
    if offset != len(view):
        raise HeError(f"the {what} has trailing bytes")
    return out


# ---------------------------------------------------------------------------------------------------------------
# Client


class HeClient:
    """The clinician's side: the secret key, encryption of a feature vector, decryption of the margin.

    ``seed`` (eight 64-bit words) makes keys and ciphertexts reproducible for tests; leave it out otherwise.
    ``parameters`` other than :data:`PARAMETERS` make a client the model service refuses (for tests).
    """

    def __init__(self, *, seed: Sequence[int] | None = None, parameters: HeParameters = PARAMETERS) -> None:
        self._seal = _Seal(parameters, seed)
        self._keygen = seal.KeyGenerator(self._seal.context)
        self._secret = self._keygen.secret_key()
        self._encryptor = seal.Encryptor(self._seal.context, self._secret)
        self._decryptor = seal.Decryptor(self._seal.context, self._secret)

    @cached_property
    def _public_context(self) -> bytes:
        s = self._seal
        relin = self._keygen.create_relin_keys()
        galois = self._keygen.create_galois_keys(s.galois_elements())
        return _frame(_CONTEXT_MAGIC, [s.save(s.parms), s.save(relin), s.save(galois)])

    def public_context(self) -> bytes:
        """Parameters, relinearization keys and the Galois keys the evaluation needs (made once)."""
        return self._public_context

    def encrypt(self, unit_vector: npt.ArrayLike) -> bytes:
        """One patient's features in unit coordinates (NaN = missing), encrypted under the secret key."""
        x = np.asarray(unit_vector, dtype=np.float64)
        if x.ndim != 1:
            raise HeError(f"encrypt takes one row of unit coordinates, not shape {x.shape}")
        s = self._seal
        if s.parameters.slots != plan_.SLOTS:
            raise HeError(f"the slot plan needs {plan_.SLOTS} slots; these parameters give {s.parameters.slots}")
        try:
            slots = plan_.encode_features(x, x.shape[0])
        except plan_.PlanError as exc:
            raise HeError(str(exc)) from exc
        top = s.parameters.top
        pt = s.encode(slots, top, s.scales[top])
        ct = self._encryptor.encrypt_symmetric(pt)  # seeded: half the size of a public-key encryption
        return _frame(_QUERY_MAGIC, [struct.pack(">II", s.parameters.slots, x.shape[0]), s.save(ct)])

    def decrypt_slots(self, reply: bytes) -> FloatArray:
        """Every slot of a reply from :meth:`HeModel.evaluate` (each holds the margin, up to CKKS noise)."""
        (blob,) = _unframe(reply, _REPLY_MAGIC, 1, "reply")
        s = self._seal
        ct = s.load(seal.Ciphertext, blob, "reply")
        pt = seal.Plaintext()
        self._decryptor.decrypt(ct, pt)
        return np.array(s.encoder.decode_double(pt), dtype=np.float64)

    def decrypt_margin(self, reply: bytes) -> float:
        """The margin in a reply: the mean of its slots, which must all hold about the same value."""
        values = self.decrypt_slots(reply)
        if not np.all(np.isfinite(values)) or np.ptp(values) > REPLY_SPREAD:
            raise HeError("the reply does not decrypt to a margin (another key, or not an evaluation result)")
        return float(np.mean(values))


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
    params_blob, relin_blob, galois_blob = _unframe(context, _CONTEXT_MAGIC, 3, "context")
    s = _server()
    parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
    with tempfile.TemporaryDirectory(prefix="pchr-he-") as tmp:
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
    galois = s.load(seal.GaloisKeys, galois_blob, "Galois key set")
    missing = [step for step, elt in zip(plan_.STEPS, s.galois_elements(), strict=True) if not galois.has_key(elt)]
    if missing:
        raise HeError(f"the context lacks Galois keys for rotations by {missing}")
    return EvaluationKeys(relin, galois, hashlib.sha256(bytes(context)).digest())


class HeModel:
    """The model service's side: one ensemble, planned and its plaintexts encoded once, evaluated per query.

    Not thread-safe (it caches encoded plaintexts per used mask); give each worker its own.
    """

    def __init__(self, p: plan_.Plan) -> None:
        self.plan = p
        s = self._seal = _server()
        top = PARAMETERS.top
        self._alpha = s.encode(p.alpha, top, s.scales[top])
        self._alpha0 = s.encode(p.alpha0, LEVEL_STAGE1, s.scales[LEVEL_STAGE1])
        baby, giant = p.baby, p.giant
        self._gather: list[list[tuple[int, Any]]] = []
        for g in range(giant):
            row = []
            for b in range(baby):
                mask = p.gather.get(g * baby + b)
                if mask is not None:
                    rolled = np.roll(mask, g * baby)  # giant rotation by g * baby comes after the product
                    row.append((b, s.encode(rolled, LEVEL_SIGN, s.scales[LEVEL_SIGN])))
            self._gather.append(row)
        self._base = s.encode(p.base_margin, 0, s.scales[0])
        self._scalars: dict[tuple[float, int, float], Any] = {}
        self._per_mask: OrderedDict[int, tuple[tuple[Any, ...], Any, Any]] = OrderedDict()

    @classmethod
    def from_layout(cls, lay: Layout, spec: FeatureSpec) -> HeModel:
        """Plan a layout for encrypted evaluation; :class:`HeError` when the model does not fit the slots."""
        try:
            return cls(plan_.plan(lay, spec))
        except plan_.PlanError as exc:
            raise HeError(str(exc)) from exc

    @property
    def n_features(self) -> int:
        return self.plan.n_features

    def evaluate(self, context: bytes | EvaluationKeys, ciphertext: bytes, used_mask: int) -> bytes:
        """The encrypted margin for one query: a reply for :meth:`HeClient.decrypt_margin`."""
        keys = context if isinstance(context, EvaluationKeys) else load_context(context)
        if not isinstance(used_mask, int) or isinstance(used_mask, bool) or not 0 <= used_mask < 1 << self.n_features:
            raise HeError(f"the used mask {used_mask!r} does not fit the model's {self.n_features} features")
        ct = self._query(ciphertext)
        return _frame(_REPLY_MAGIC, [self._seal.save(self._run(ct, keys, used_mask))])

    # -- parsing ---------------------------------------------------------------------------------------------

    def _query(self, ciphertext: bytes) -> Any:
        header, blob = _unframe(ciphertext, _QUERY_MAGIC, 2, "query")
        if len(header) != 8:
            raise HeError("the query header is malformed")
        slots, n_features = struct.unpack(">II", header)
        if slots != PARAMETERS.slots:
            raise HeError(f"the query has {slots} slots; the evaluation needs {PARAMETERS.slots}")
        if n_features != self.n_features:
            raise HeError(f"the query encodes {n_features} features; the model takes {self.n_features}")
        s = self._seal
        ct = s.load(seal.Ciphertext, blob, "ciphertext")
        if ct.size() != 2 or s.level(ct) != PARAMETERS.top:
            raise HeError("the ciphertext is not a fresh encryption at the top level")
        if not math.isclose(ct.scale, s.scales[PARAMETERS.top], rel_tol=1e-9):
            raise HeError("the ciphertext is not at the evaluation's input scale")
        ct.scale = s.scales[PARAMETERS.top]
        return ct

    # -- evaluation ------------------------------------------------------------------------------------------

    def _run(self, ct: Any, keys: EvaluationKeys, used_mask: int) -> Any:
        ev, g = self._seal.evaluator, keys.galois
        p = self.plan
        # Stage 1: a plaintext combination of the client's Chebyshev blocks, then the blocks added together.
        z = self._times_plain(ct, self._alpha, LEVEL_STAGE1)
        for step in plan_.BLOCK_STEPS:
            ev.add_inplace(z, self._rotate(z, step, g))
        ev.add_plain_inplace(z, self._alpha0)
        level = LEVEL_STAGE1
        for coef in sign.STAGES[1:-1]:
            z = self._stage(z, level, coef if len(coef) == 2 else (coef[0], coef[1] / coef[3], *coef[2:]), None, keys)
            level -= _depth(2 * len(coef) - 1)
        if level != LEVEL_SIGN + _depth(sign.DEGREES[-1]):
            raise AssertionError("sign stages left the depth budget")
        odd, const, path_constant = self._mask_plaintexts(used_mask)
        b = self._stage(z, level, odd, const, keys)
        # Gather into path space: baby rotations by 1, products with the masks, giant rotations by `baby`.
        babies = [b]
        for _ in range(1, p.baby):
            babies.append(self._rotate(babies[-1], 1, g))
        acc: Any = None
        for row in reversed(self._gather):
            inner = self._dot(babies, row)
            if acc is None:
                acc = inner
            else:
                acc = self._rotate(acc, p.baby, g)
                if inner is not None:
                    ev.add_inplace(acc, inner)
        if acc is None:
            raise AssertionError("a plan without comparisons reached the evaluator")
        ev.add_plain_inplace(acc, path_constant)
        # Path products: factors 2048 slots apart, then pairs 4096 apart.
        for step in (plan_.DEPTH_STEP, 2 * plan_.DEPTH_STEP):
            acc = self._multiply(acc, self._rotate(acc, step, g), keys)
        for step, width in plan_.SUM_STEPS:
            shifted = acc
            total = acc
            for _ in range(width - 1):
                shifted = self._rotate(shifted, step, g)
                total = self._add(total, shifted)
            acc = total
        ev.add_plain_inplace(acc, self._base)
        return acc

    def _stage(self, z: Any, level: int, coef: Sequence[Any], const: Any, keys: EvaluationKeys) -> Any:
        """One odd stage of the sign composite at ``level`` (plus ``const``), relinearizing every product.

        Degree 3, ``coef = (c1, c3)``: ``c1 z + (c3 z) z^2``, depth 2, 2 products. Degree 7,
        ``coef = (c1, c3 / c7, c5, c7)``: ``z^4 (c5 z + c7 z^3) + c1 z + c3 z^3`` with ``c3 z^3`` taken from
        ``c7 z^3``, which the first term needs anyway, so that the stage has depth 3 with 4 products. Terms that
        land on one level are added before a single rescaling.
        """
        ev = self._seal.evaluator
        x2 = self._multiply(z, z, keys)
        if len(coef) == 2:
            c1, c3 = coef
            out = self._multiply(self._times(z, c3, level - 1), x2, keys, rescale=False)
            ev.add_inplace(out, self._times(z, c1, level - 2, rescale=False))
        else:
            c1, ratio, c5, c7 = coef
            x3c7_raw = self._multiply(self._times(z, c7, level - 1), x2, keys, rescale=False)
            inner = self._add(x3c7_raw, self._times(z, c5, level - 2, rescale=False))
            x3c7 = self._rescale(x3c7_raw)
            x4 = self._multiply(x2, x2, keys)
            out = self._multiply(x4, self._rescale(inner), keys, rescale=False)
            ev.add_inplace(out, self._times(z, c1, level - 3, rescale=False))
            ev.add_inplace(out, self._times(x3c7, ratio, level - 3, rescale=False))
        out = self._rescale(out)
        if const is not None:
            ev.add_plain_inplace(out, const)
        return out

    def _mask_plaintexts(self, used_mask: int) -> tuple[tuple[Any, ...], Any, Any]:
        """What depends on the used mask, encoded: the last stage's coefficients and constant, and the constant
        of path space (cached for the 64 most recent masks)."""
        cached = self._per_mask.get(used_mask)
        if cached is not None:
            self._per_mask.move_to_end(used_mask)
            return cached
        odd, const = plan_.last_stage(self.plan, used_mask)
        level = LEVEL_SIGN + 3
        c1, c3, c5, c7 = odd
        s = self._seal
        encoded = (
            self._plain_for(c1, level, level - 3),
            self._plain_for(_ratio(c3, c7), level - 2, level - 3),
            self._plain_for(c5, level, level - 2),
            self._plain_for(c7, level, level - 1),
        )
        path = plan_.path_constant(self.plan, used_mask)
        entry = (
            encoded,
            s.encode(const, LEVEL_SIGN, s.scales[LEVEL_SIGN]),
            s.encode(path, LEVEL_GATHER, s.scales[LEVEL_GATHER]),
        )
        self._per_mask[used_mask] = entry
        if len(self._per_mask) > 64:
            self._per_mask.popitem(last=False)
        return entry

    # -- primitives with exact scales ------------------------------------------------------------------------

    def _plain_for(self, values: FloatArray, source: int, target: int) -> _Prepared:
        """Slot values encoded to take a ciphertext at level ``source`` to ``target`` (and its scale)."""
        s = self._seal
        scale = s.scales[target] * s.primes[target + 1] / s.scales[source]
        return _Prepared(s.encode(values, target + 1, scale), source)

    def _times(self, ct: Any, factor: float | _Prepared, target: int, *, rescale: bool = True) -> Any:
        """``factor * ct`` landing at level ``target``: a scalar or slot values prepared by :meth:`_plain_for`."""
        s = self._seal
        source = s.level(ct)
        if isinstance(factor, _Prepared):
            if factor.source != source:
                raise AssertionError("a prepared plaintext met a ciphertext at another level")
            pt = factor.plaintext
        else:
            key = (float(factor), source, float(target))
            pt = self._scalars.get(key)
            if pt is None:
                pt = s.encode(float(factor), target + 1, s.scales[target] * s.primes[target + 1] / s.scales[source])
                self._scalars[key] = pt
        return self._times_plain(ct, pt, target, rescale=rescale)

    def _times_plain(self, ct: Any, pt: Any, target: int, *, rescale: bool = True) -> Any:
        """``pt * ct`` for a plaintext scaled to land at ``target``; unrescaled, one level above it."""
        s, ev = self._seal, self._seal.evaluator
        out = seal.Ciphertext()
        if s.level(ct) > target + 1:
            ev.mod_switch_to(ct, s.parms_ids[target + 1], out)
            ev.multiply_plain_inplace(out, pt)
        else:
            ev.multiply_plain(ct, pt, out)
        _pin(out, s.scales[target] * s.primes[target + 1])
        return self._rescale(out) if rescale else out

    def _multiply(self, a: Any, b: Any, keys: EvaluationKeys, *, rescale: bool = True) -> Any:
        """Product of two ciphertexts at one level, relinearized, then (by default) rescaled."""
        s, ev = self._seal, self._seal.evaluator
        level = s.level(a)
        if s.level(b) != level:
            raise AssertionError("products of ciphertexts at different levels")
        out = seal.Ciphertext()
        ev.multiply(a, b, out)
        ev.relinearize_inplace(out, keys.relin)
        _pin(out, s.scales[level - 1] * s.primes[level])
        return self._rescale(out) if rescale else out

    def _rescale(self, ct: Any) -> Any:
        """Divide by the level's last prime; the scale becomes exactly the next level's."""
        s = self._seal
        out = seal.Ciphertext()
        s.evaluator.rescale_to_next(ct, out)
        _pin(out, s.scales[s.level(out)])
        return out

    def _add(self, a: Any, b: Any) -> Any:
        out = seal.Ciphertext()
        self._seal.evaluator.add(a, b, out)
        return out

    def _rotate(self, ct: Any, step: int, galois: Any) -> Any:
        out = seal.Ciphertext()
        self._seal.evaluator.rotate_vector(ct, step, galois, out)
        return out

    def _dot(self, babies: Sequence[Any], row: Sequence[tuple[int, Any]]) -> Any:
        """``sum mask_b * babies[b]`` rescaled to the gather's level, or None for an empty row."""
        s, ev = self._seal, self._seal.evaluator
        acc: Any = None
        for b, pt in row:
            term = seal.Ciphertext()
            ev.multiply_plain(babies[b], pt, term)
            if acc is None:
                acc = term
            else:
                ev.add_inplace(acc, term)
        if acc is None:
            return None
        ev.rescale_to_next_inplace(acc)
        _pin(acc, s.scales[LEVEL_GATHER])
        return acc


@dataclass(frozen=True)
class _Prepared:
    plaintext: Any
    source: int
    """The level of the ciphertexts it multiplies."""


def _pin(ct: Any, scale: float) -> None:
    """Set a ciphertext's scale to the level's exact value, which it may miss by rounding only."""
    if not math.isclose(ct.scale, scale, rel_tol=1e-9):
        raise AssertionError(f"scale {ct.scale!r} strays from the level's {scale!r}")
    ct.scale = scale


def _ratio(c3: Any, c7: Any) -> Any:
    """``c3 / c7`` (0 where ``c7`` is 0): the factor that turns ``c7 x^3`` into ``c3 x^3``."""
    if isinstance(c3, np.ndarray) or isinstance(c7, np.ndarray):
        a, b = np.asarray(c3, dtype=np.float64), np.asarray(c7, dtype=np.float64)
        return np.divide(a, b, out=np.zeros_like(a), where=b != 0)
    return float(c3) / float(c7)
