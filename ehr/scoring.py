"""Encrypted risk scores, client side: the clinician's half of the scoring protocol, and the patient's grant.

DESIGN.md section 5, issue 4 item 4. For one patient and one model, :meth:`ScoringClient.score`:

1. finds the clinician's active **scoring grant** from that patient for that model (purpose ``model:<id>``; its
   scope is a mask over the model's features);
2. reads the patient's records the clinician may read (its read grants; the vault refuses the rest) and
   extracts the model's features from them (:func:`models.features.extract`), forcing every feature outside the
   scoring grant's scope to *missing*;
3. encrypts the feature vector under the clinician's own CKKS secret key (:class:`models.he.HeClient`), having
   registered the public evaluation keys with the model service once for the session;
4. proves in zero knowledge that an active grant in the ledger's grant tree covers this request
   (:func:`zk.attestation.attest`: the grant's opening and its membership path stay private; the proof is bound
   to the request's hash), with the service's published proving key;
5. sends the ciphertext, the public used-feature mask and the proof to ``POST /models/{id}/score``, which
   checks them before any homomorphic work and writes the proof to the ledger as an ATTEST entry, and decrypts
   the encrypted margin that comes back; the probability is its sigmoid.

The model service sees neither a feature nor the score; the clinician learns the score, never the model's trees.
:func:`grant_scoring` is the patient's side: a scoring grant over the model's feature catalogue.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from consent_chain.catalogue import ScopeCatalogue
from consent_chain.grants import Grant
from consent_chain.state_tree import MerklePath
from ehr.client import VaultClient, VaultClientError
from models.features import FeatureSpec, FeatureVector, extract
from zk.attestation import Attestation, attest_assignment, request_hash
from zk.consent_circuit import StatementError, assign, consent_r1cs
from zk.keys import ProvingKey
from zk.zkey import check_key_matches, zkey_from_bytes

__all__ = ["RiskScore", "ScoringClient", "grant_scoring"]


def grant_scoring(
    patient: VaultClient,
    grantee: str,
    model: dict[str, Any],
    *,
    expiry: datetime,
    features: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The patient grants ``grantee`` scoring with ``model`` (a ``GET /models`` entry) over these features.

    ``features`` are keys of the model's feature catalogue; all of them when None.
    """
    catalogue = ScopeCatalogue.from_json(model["catalogue"])
    keys = list(features) if features is not None else [e.key for e in catalogue.entries]
    return patient.grant(grantee, keys, expiry=expiry, purpose=model["purpose"], catalogue=catalogue)


@dataclass(frozen=True)
class RiskScore:
    """One encrypted scoring round, as the clinician sees it."""

    model_id: str
    model_name: str
    patient: str
    grant_id: str
    margin: float
    used_mask: int
    used: tuple[str, ...]
    missing: tuple[str, ...]
    features: FeatureVector
    upload_bytes: int
    attestation: Attestation
    attest_entry: int
    """The ledger index of the ATTEST entry the service appended for this score."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of the client's steps: ``encrypt``, ``prove``, ``round trip`` (the service's work and the
    transfer), ``decrypt``."""

    @property
    def probability(self) -> float:
        return 1.0 / (1.0 + math.exp(-self.margin))


class ScoringClient:
    """A clinician's scoring session with one vault's model service (one CKKS key for the session)."""

    def __init__(self, vault: VaultClient, *, he: Any = None, proving_key: ProvingKey | None = None) -> None:
        """``he``: a :class:`models.he.HeClient` to reuse (key generation takes seconds); ``proving_key``: the
        service's consent proving key, already fetched and checked. Made or fetched on first use if None."""
        self.vault = vault
        self._he: Any = he
        self._session: str | None = None
        self._models: dict[str, dict[str, Any]] = {}
        self._proving_key = proving_key

    # -- models -------------------------------------------------------------------------------------
    def models(self) -> list[dict[str, Any]]:
        listing: list[dict[str, Any]] = self.vault.get_json("/models")["models"]
        for m in listing:
            self._models[m["id"]] = self._models[m["name"]] = m
        return listing

    def model(self, ref: str) -> dict[str, Any]:
        """A served model by id or name."""
        if ref not in self._models:
            found = self.vault.get_json(f"/models/{ref}")
            self._models[found["id"]] = self._models[found["name"]] = found
        return self._models[ref]

    # -- keys ---------------------------------------------------------------------------------------
    @property
    def he(self) -> Any:
        """The clinician's CKKS key (made on first use: key generation takes seconds)."""
        if self._he is None:
            from models.he import HeClient

            self._he = HeClient()
        return self._he

    def open_session(self) -> str:
        """Register the public evaluation keys with the model service (once per session); the session id."""
        if self._session is None:
            self._session = str(self.vault.post_bytes("/models/sessions", self.he.public_context())["session"])
        return self._session

    def proving_key(self) -> ProvingKey:
        """The service's proving key for the consent circuit, checked against the circuit and made ready for the
        prover's MSMs (:attr:`zk.keys.ProvingKey.msm_bases`): once per client."""
        if self._proving_key is None:
            pk = zkey_from_bytes(self.vault.get_bytes("/zk/proving-key"))
            check_key_matches(pk, consent_r1cs())
            _ = pk.msm_bases  # made now, so that no proof's time includes it
            self._proving_key = pk
        return self._proving_key

    def prove(
        self,
        grant: dict[str, Any],
        model_id: str,
        used_mask: int,
        session: str,
        ciphertext: bytes,
        *,
        seconds: dict[str, float] | None = None,
    ) -> Attestation:
        """A proof that ``grant`` (the vault's record of it, with its opening) covers this request, now.

        VaultClientError 403 when no proof is possible: the grant's leaf is not in the ledger's current grant tree
        (revoked), it has expired, or the mask leaves its scope. ``seconds``, if given, receives the wall time of
        the two halves: ``"witness"`` (the grant's path from the ledger, the request hash, the circuit's wires) and
        ``"prove"`` (the Groth16 proof with its self-check).
        """
        began = time.perf_counter()
        opening = Grant.from_json(grant)
        doc = self.vault.get_json(f"/ledger/grants/{opening.grant_id.hex()}/path")
        try:
            path, root = MerklePath.from_json(doc), int(doc["root"])
        except (ValueError, KeyError, TypeError) as exc:
            raise VaultClientError(502, None, f"the vault answered a malformed grant path: {exc}") from exc
        t = int(self.vault.now().timestamp())
        digest = request_hash(
            model_id=model_id,
            used_mask=used_mask,
            t=t,
            grantee=self.vault.address,
            context_digest=bytes.fromhex(session),
            ciphertext=ciphertext,
        )
        pk = self.proving_key()
        try:
            assignment = assign(opening, path, root, used_mask=used_mask, t=t, request_hash=digest)
            witnessed = time.perf_counter()
            attestation = attest_assignment(pk, opening, assignment)
        except StatementError as exc:
            raise VaultClientError(403, None, f"no proof of consent is possible: {exc}") from exc
        if seconds is not None:
            seconds["witness"] = witnessed - began
            seconds["prove"] = time.perf_counter() - witnessed
        return attestation

    # -- scoring ------------------------------------------------------------------------------------
    def scoring_grant(self, patient: str, model_id: str, grant_id: str | None = None) -> dict[str, Any]:
        """The clinician's scoring grant from ``patient`` for this model: ``grant_id`` as it stands (the service
        decides whether it is still active), or else the newest active one."""
        now = self.vault.now()
        held = [
            g
            for g in self.vault.grants()
            if g["grantee"] == self.vault.address
            and g["patient"].lower() == patient.lower()
            and g["purpose"] == f"model:{model_id}"
        ]
        if grant_id is not None:
            held = [g for g in held if g["grantId"] == grant_id.lower()]
        else:
            held = [g for g in held if g["revokedAt"] is None and datetime.fromisoformat(g["expiry"]) > now]
        if not held:
            raise VaultClientError(403, None, f"no active scoring grant from {patient} for model {model_id[:12]}…")
        return max(held, key=lambda g: g["grantedAt"])

    def records(self, patient: str) -> list[dict[str, Any]]:
        """The patient's Patient resource and Observations, as far as the clinician's read grants reach."""
        out: list[dict[str, Any]] = []
        for resource_type in ("Patient", "Observation"):
            try:
                out += self.vault.everything(resource_type, [("patient", patient)])
            except VaultClientError as exc:
                if exc.status != 403:
                    raise
        return out

    def features(self, patient: str, model: dict[str, Any], scope: int, *, on: date | None = None) -> FeatureVector:
        spec = FeatureSpec.from_json(model["spec"])
        return extract(spec, self.records(patient), reference_date=on or self.vault.now().date(), scope=scope)

    def score(self, model_ref: str, patient: str, *, grant_id: str | None = None, on: date | None = None) -> RiskScore:
        """An encrypted risk score for ``patient`` (the module docstring has the steps)."""
        model = self.model(model_ref)
        spec = FeatureSpec.from_json(model["spec"])
        grant = self.scoring_grant(patient, model["id"], grant_id)
        scope = int(grant["scope"], 16)
        vector = self.features(patient, model, scope, on=on)
        session = self.open_session()
        fetching = time.perf_counter()
        self.proving_key()  # fetched and checked against the circuit on first use, then kept
        began = time.perf_counter()
        ciphertext = self.he.encrypt(spec.unit(vector.array())[0])
        encrypted = time.perf_counter()
        proving: dict[str, float] = {}
        attestation = self.prove(grant, model["id"], vector.used_mask, session, ciphertext, seconds=proving)
        proved = time.perf_counter()
        body = {
            "session": session,
            "grant": grant["grantId"],
            "usedMask": format(vector.used_mask, "016x"),
            "ciphertext": base64.b64encode(ciphertext).decode(),
            "attestation": base64.b64encode(attestation.to_bytes()).decode(),
        }
        reply = self.vault.post_json(f"/models/{model['id']}/score", body)
        answered = time.perf_counter()
        margin = self.he.decrypt_margin(base64.b64decode(reply["reply"]))
        done = time.perf_counter()
        keys = [f.key for f in spec.features]
        return RiskScore(
            model_id=model["id"],
            model_name=spec.name,
            patient=patient,
            grant_id=grant["grantId"],
            margin=margin,
            used_mask=vector.used_mask,
            used=tuple(k for i, k in enumerate(keys) if vector.used_mask >> i & 1),
            missing=tuple(k for i, k in enumerate(keys) if not vector.used_mask >> i & 1),
            features=vector,
            upload_bytes=len(ciphertext),
            attestation=attestation,
            attest_entry=int(reply["attestation"]["entryIndex"]),
            seconds={
                "proving key": began - fetching,
                "encrypt": encrypted - began,
                "witness": proving["witness"],
                "prove": proving["prove"],
                "round trip": answered - proved,
                "decrypt": done - answered,
            },
        )
