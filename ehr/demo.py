"""``pchr demo``: the vault's main flow, end to end, on a temporary SQLite file, narrated for a person.

onboard (keys, registration, KEY entries) -> upload a realistic generated record, sealed on the patient's side ->
show that the database holds only ciphertext -> the patient reads it back -> the clinician is refused -> the
patient grants laboratory results (GRANT on the consent ledger, keys re-wrapped) -> the clinician reads exactly
those -> revoke (REVOKE, keys deleted) -> refused -> an auditor verifies the ledger.
Everything runs in this process, over real HTTP on a loopback port.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import re
import secrets
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ehr._serve import listen, serve_in_thread
from ehr.api import create_app
from ehr.client import VaultClient, VaultClientError
from ehr.identity import ActorKeys, Role
from ehr.keyfile import dump_keyfile, load_keyfile
from ehr.settings import Settings
from ehr.summary import summarize
from ehr.transaction import assign_patient

__all__ = ["database_bytes", "plaintext_needles", "run_demo", "synthetic_record"]

# Keys that hold identifiers the vault stores in clear as metadata (types, ids, the patient's pseudonym).
_METADATA_KEYS = {"id", "reference", "fullUrl", "url", "resourceType", "method", "fhir_comments"}
# Hex-only strings shorter than this could occur by chance in the database's hex text (p < 1e-9 at 16 digits).
_HEX = re.compile(r"[0-9A-Fa-f-]+")  # with hyphens: a LOINC code such as 8867-4 fits inside a UUID
_HEX_SAFE_LENGTH = 16


def synthetic_record(seed: int = 7, profile: str = "type2_diabetes") -> dict[str, Any]:
    """A clinically coherent synthetic R4 transaction Bundle (carebundle), as JSON."""
    import carebundle

    bundle: dict[str, Any] = json.loads(carebundle.to_json(carebundle.generate_bundle(profile=profile, seed=seed)))
    return bundle


def plaintext_needles(bundle: dict[str, Any], min_length: int = 6) -> set[str]:
    """Strings from a record that must never appear in the vault's database: names, dates, codes, values.

    Every string of at least ``min_length`` characters outside the metadata the vault keeps in clear, and every
    quantity as it would appear in JSON (``"value":7.4``). A short string made only of hex digits and hyphens (an
    RxNorm or SNOMED code such as ``310798``, a LOINC code such as ``8867-4``) is searched for with its JSON quotes:
    bare, it turns up by chance inside the hex-encoded addresses, UUIDs and signatures the database rightly holds
    (each kind failed a test run once).
    """
    found: set[str] = set()

    def walk(node: Any, key: str | None = None) -> None:
        if isinstance(node, dict):
            if "value" in node and isinstance(node["value"], int | float) and not isinstance(node["value"], bool):
                found.add(f'"value":{json.dumps(node["value"])}')
            for k, v in node.items():
                if k not in _METADATA_KEYS:
                    walk(v, k)
        elif isinstance(node, list):
            for item in node:
                walk(item, key)
        elif isinstance(node, str) and len(node) >= min_length:
            quoted = json.dumps(node, ensure_ascii=False)  # as it would stand in stored JSON
            found.add(quoted if len(node) < _HEX_SAFE_LENGTH and _HEX.fullmatch(node) else quoted[1:-1])

    for entry in bundle.get("entry", []):
        walk(entry.get("resource", {}))
    return found


def database_bytes(db_path: Path) -> bytes:
    """Every byte of a SQLite database, with its write-ahead log folded in and appended."""
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    parts = [p.read_bytes() for p in (db_path, Path(f"{db_path}-wal")) if p.exists()]
    return b"".join(parts)


def _table_counts(db_path: Path) -> dict[str, int]:
    with sqlite3.connect(db_path) as conn:
        tables = ("resource_version", "wrapped_key", "actor")
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}  # noqa: S608


def _ciphertext_bytes(db_path: Path) -> int:
    with sqlite3.connect(db_path) as conn:
        return int(conn.execute("SELECT COALESCE(SUM(LENGTH(ciphertext)), 0) FROM resource_version").fetchone()[0])


def run_demo(
    workdir: Path | None = None, *, echo: Callable[[str], None] = print, seed: int = 7, ledger: str = "sql"
) -> int:
    """Run the narrated flow; returns a process exit code (0 when every step behaved as it must).

    ``ledger``: ``sql`` (tables in the vault's database) or ``evm`` (the ConsentLedger contract on an in-process
    EVM chain)."""
    with _workdir(workdir) as where:
        return _run(where, echo, seed, ledger)


class _workdir:
    def __init__(self, given: Path | None) -> None:
        self.given = given
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> Path:
        if self.given is not None:
            self.given.mkdir(parents=True, exist_ok=True)
            return self.given
        self._tmp = tempfile.TemporaryDirectory(prefix="pchr-demo-")
        return Path(self._tmp.name)

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def _steps() -> Iterator[int]:
    n = 1
    while True:
        yield n
        n += 1


def _run(where: Path, echo: Callable[[str], None], seed: int, ledger: str = "sql") -> int:
    step = _steps()
    db_path = where / "vault.db"
    listener = listen()  # bound first: the vault is built knowing the URL it answers at (its token audience)
    settings = Settings(database_url=f"sqlite:///{db_path}", models=("diabetes",), public_url=listener.url)
    settings = dataclasses.replace(settings, ledger="evm+tester" if ledger == "evm" else "sql")
    echo("pchr demo: an encrypted, patient-controlled health record\n")
    app = create_app(settings)
    with serve_in_thread(app, listener=listener) as base:
        echo(f"{next(step)}. Vault running at {base}, storing into {db_path}")
        if ledger == "evm":
            _describe_evm_ledger(app, echo)

        # Onboard: keys are made and kept on each actor's side; only public keys reach the vault.
        passphrase = secrets.token_urlsafe(16)  # a fresh one per run; real users choose their own
        actors = {}
        for name, role in (("patient", Role.PATIENT), ("clinician", Role.CLINICIAN)):
            keys = ActorKeys.generate(role)
            keyfile = where / f"{name}.key"
            keyfile.write_bytes(dump_keyfile(keys, passphrase, n=2**14))
            actors[name] = VaultClient.connect(base, load_keyfile(keyfile.read_bytes(), passphrase))
            actors[name].register()
        patient, clinician = actors["patient"], actors["clinician"]
        echo(f"{next(step)}. Onboarded two actors (secp256k1 identity + X25519 encryption key, keyfile scrypt-sealed)")
        echo(f"     patient   {patient.address}")
        echo(f"     clinician {clinician.address}")

        # Upload a realistic record, sealed on the patient's side.
        bundle = synthetic_record(seed)
        kinds = Counter(e["resource"]["resourceType"] for e in bundle["entry"])
        echo(
            f"{next(step)}. Generated a synthetic type-2 diabetes record (carebundle, seed {seed}): "
            f"{sum(kinds.values())} resources"
        )
        echo("     " + ", ".join(f"{n} {k}" for k, n in kinds.most_common()))
        response = patient.transaction(assign_patient(bundle, patient.address), patient=patient.address)
        created = sum(1 for e in response["entry"] if e["response"]["status"].startswith("201"))
        echo(f"     uploaded as one transaction, each resource sealed on the patient's machine: {created} created")

        # What the server holds.
        counts = _table_counts(db_path)
        needles = plaintext_needles(bundle)
        raw = database_bytes(db_path)
        leaked = sorted(n for n in needles if n.encode() in raw)
        echo(
            f"{next(step)}. What the vault's database holds: {counts['resource_version']} sealed versions "
            f"({_ciphertext_bytes(db_path):,} bytes of AES-256-GCM ciphertext), {counts['wrapped_key']} wrapped "
            f"data keys, {counts['actor']} public key records"
        )
        echo(
            f"     searched the database file ({len(raw):,} bytes) for {len(needles)} names, dates, codes and "
            f"values from the record: {len(leaked)} found"
        )
        for needle in leaked[:5]:
            echo(f"     LEAK: {needle[:40]!r}")

        # The patient reads it back.
        observations = patient.everything("Observation")
        person = patient.read("Patient", patient.address)
        name = (person.get("name") or [{}])[0]
        echo(
            f"{next(step)}. The patient reads the record back, decrypting on their side: "
            f"{' '.join(name.get('given', []))} {name.get('family', '')}, born {person.get('birthDate')}; "
            f"{len(observations)} Observations, e.g."
        )

        for obs in observations[:3]:
            echo(f"     {summarize(obs)}")

        # The clinician has no grant: refused.
        refusals: list[VaultClientError | None] = []
        attempts: list[Callable[[], object]] = [
            lambda: clinician.read("Observation", observations[0]["id"]),
            lambda: clinician.search("Observation", [("patient", patient.address)]),
        ]
        for attempt in attempts:
            try:
                attempt()
                refusals.append(None)
            except VaultClientError as exc:
                refusals.append(exc)
        ok_refused = all(r is not None and r.status == 403 for r in refusals)
        first = refusals[0]
        echo(
            f"{next(step)}. The clinician asks for the patient's Observations without a grant: "
            f"{'refused' if ok_refused else 'NOT REFUSED'}"
        )
        if first is not None:
            echo(f"     {first.status} OperationOutcome: {first.message}")

        # Grant: the patient signs (EIP-712) a grant of laboratory results only; the vault puts it on the ledger.
        lab_ids = {o["id"] for o in observations if _has_category(o, "laboratory")}
        other = next(o for o in observations if o["id"] not in lab_ids)
        grant = patient.grant(clinician.address, ["laboratory"], expiry=datetime.now(UTC) + timedelta(days=30))
        echo(
            f"{next(step)}. The patient grants the clinician their laboratory results for 30 days, signing the "
            f"grant's Poseidon commitment (EIP-712)"
        )
        echo(
            f"     ledger entry {grant['entryIndex']} (GRANT), grant-tree leaf {grant['leafIndex']}; "
            f"{grant['keysShared']} data keys re-wrapped for the clinician on the patient's side"
        )

        # The clinician reads what the grant covers, and only that.
        seen = clinician.everything("Observation", [("patient", patient.address)])
        outside = _refusal(lambda: clinician.read("Observation", other["id"]))
        granted_ok = {o["id"] for o in seen} == lab_ids and outside is not None and outside.status == 403
        echo(
            f"{next(step)}. The clinician reads the patient's Observations: {len(seen)} laboratory results, "
            f"decrypted on the clinician's side, e.g."
        )
        for obs in seen[:2]:
            echo(f"     {summarize(obs)}")
        echo(
            f"     a vital sign outside the grant: {outside.status if outside else 'NOT REFUSED'} "
            f"({outside.message if outside else ''})"
        )
        log = patient.access_log()
        echo(f"     the patient's access log shows {len(log)} access(es) by {clinician.address[:10]}…")

        # Revoke: the clinician is refused again.
        revoked = patient.revoke(grant["grantId"])
        after = _refusal(lambda: clinician.read("Observation", seen[0]["id"]))
        revoked_ok = after is not None and after.status == 403
        echo(
            f"{next(step)}. The patient revokes the grant: ledger entry {revoked['entryIndex']} (REVOKE), "
            f"{revoked['keysDeleted']} keys deleted"
        )
        echo(
            f"     the clinician asks again: {'refused' if revoked_ok else 'NOT REFUSED'} "
            f"({after.status if after else ''} {after.message if after else ''})"
        )

        # Encrypted risk scoring: a scoring grant, the clinician's CKKS key, the model on ciphertext.
        scored_ok = _score_step(echo, step, patient, clinician)

        # The auditor verifies the ledger from public data alone.
        from ehr.ledger_audit import run_attestation_audit

        echo(f"{next(step)}. An auditor verifies the consent ledger and its attestations (pchr audit attestations):")
        audit_ok = run_attestation_audit(base, where / "audit.json", None, echo=lambda line: echo(f"     {line}")) == 0
        if ledger == "evm":
            audit_ok = _evm_replica_agrees(app, echo) and audit_ok

        patient.close()
        clinician.close()

    healthy = (
        not leaked
        and ok_refused
        and created == sum(kinds.values())
        and len(observations) == kinds["Observation"]
        and granted_ok
        and revoked_ok
        and audit_ok
        and scored_ok
    )
    echo(
        "\n"
        + (
            "Done: the vault stored and served only ciphertext; a patient-signed grant on the consent ledger opened "
            "exactly the granted records, its revocation closed them; a risk model scored encrypted features "
            "under a scoring grant, as plaintext XGBoost does; and the ledger audits clean."
            if healthy
            else "FAILED: see the steps above."
        )
    )
    return 0 if healthy else 1


def _has_category(resource: dict[str, Any], code: str) -> bool:
    return any(c.get("code") == code for cat in resource.get("category", []) for c in cat.get("coding", []))


def _refusal(attempt: Callable[[], object]) -> VaultClientError | None:
    try:
        attempt()
    except VaultClientError as exc:
        return exc
    return None


# The Pima measurements a type-2 diabetes work-up adds to the synthetic record (which has blood pressure, BMI
# and a birth date): a 2-hour oral glucose tolerance test, triceps skinfold, pregnancies, and the pedigree score.
_WORKUP_FEATURES = ("glucose-2h-ogtt", "triceps-skinfold", "pregnancies", "diabetes-pedigree")


def _score_step(
    echo: Callable[[str], None],
    step: Iterator[int],
    patient: VaultClient,
    clinician: VaultClient,
) -> bool:
    """Grant, score over CKKS, compare with plaintext XGBoost, revoke, be refused. True if all behaved."""
    import numpy as np

    from ehr.scoring import ScoringClient, grant_scoring
    from models.features import DIABETES, extract, to_fhir
    from models.recipes import recipe
    from models.train import split, xgboost_margins

    today = datetime.now(UTC).date()
    row = split(recipe("diabetes")).x_test[0].copy()
    keep = [f.key in _WORKUP_FEATURES for f in DIABETES.features]
    workup = to_fhir(DIABETES, np.where(keep, row, np.nan), patient.address, reference_date=today)
    for obs in workup[1:]:
        patient.create(obs)
    mine = [*patient.everything("Observation"), patient.read("Patient", patient.address)]
    vector = extract(DIABETES, mine, reference_date=today)

    scorer = ScoringClient(clinician)
    model = scorer.model("diabetes")
    read = patient.grant(clinician.address, ["patient", "observation"], expiry=datetime.now(UTC) + timedelta(days=1))
    grant = grant_scoring(patient, clinician.address, model, expiry=datetime.now(UTC) + timedelta(days=1))
    echo(
        f"{next(step)}. Encrypted risk scoring: the patient adds a diabetes work-up ({len(workup) - 1} results) and "
        f"grants the clinician scoring with the diabetes model {model['id'][:12]}… (ledger entry "
        f"{grant['entryIndex']}, purpose model:<id>, scope: all {len(model['catalogue']['entries'])} features), "
        "with a read grant for the records the features come from"
    )
    result = scorer.score("diabetes", patient.address)
    artifact_margin = float(xgboost_margins(_booster(model["id"]), vector.array()[None, :])[0])
    delta = abs(result.margin - artifact_margin)
    echo(
        f"     the clinician extracts {len(result.used)} features from the records it may read, encrypts them "
        f"under its own CKKS key ({result.upload_bytes / 1e6:.2f} MB) and sends them with the public mask "
        f"{result.used_mask:#04x}; the model service evaluates the whole tree ensemble on the ciphertext and "
        "returns an encrypted margin"
    )
    echo(
        f"     diabetes risk, decrypted by the clinician: {result.probability:.4f} (margin {result.margin:+.5f}); "
        f"plaintext XGBoost on the same record: {1 / (1 + math.exp(-artifact_margin)):.4f} "
        f"(margin {artifact_margin:+.5f}); |difference| {delta:.1e}"
    )
    attestation = result.attestation
    echo(
        f"     proof of consent: Groth16 on BN254 over the consent circuit ({attestation.SIZE} bytes with its public "
        f"inputs, proof {len(attestation.proof.to_bytes())} bytes), made by the clinician in "
        f"{result.seconds['prove']:.1f} s without revealing the patient, the grant or its leaf (before it, the "
        f"grant's ledger path and the circuit's wires took {result.seconds['witness']:.1f} s, and fetching the proving "
        f"key and checking it against the circuit {result.seconds['proving key']:.1f} s, once); the service checked "
        "it before any homomorphic work and kept it as ledger entry "
        f"{result.attest_entry} (ATTEST)"
    )
    echo(
        f"     timings: encrypt {result.seconds['encrypt']:.2f} s, service round trip "
        f"{result.seconds['round trip']:.2f} s, decrypt {result.seconds['decrypt']:.3f} s"
    )
    # A request proved now, sent only after the revocation below.
    spec = DIABETES
    pending_ct = scorer.he.encrypt(spec.unit(vector.array())[0])
    session = scorer.open_session()
    pending = scorer.prove(
        scorer.scoring_grant(patient.address, model["id"]), model["id"], vector.used_mask, session, pending_ct
    )
    patient.revoke(grant["grantId"])
    patient.revoke(read["grantId"])
    refused = _refusal(lambda: scorer.score("diabetes", patient.address, grant_id=grant["grantId"]))
    echo(
        f"     the patient revokes the scoring grant; the clinician tries again: "
        f"{'refused' if refused else 'NOT REFUSED'} ({refused.status if refused else ''} "
        f"{refused.message if refused else ''})"
    )
    body = {
        "session": session,
        "grant": grant["grantId"],
        "usedMask": format(vector.used_mask, "016x"),
        "ciphertext": base64.b64encode(pending_ct).decode(),
        "attestation": base64.b64encode(pending.to_bytes()).decode(),
    }
    stale = _refusal(lambda: clinician.post_json(f"/models/{model['id']}/score", body))
    echo(
        f"     a proof made before the revocation, sent after it: {'refused' if stale else 'NOT REFUSED'} "
        f"({stale.status if stale else ''} {stale.message if stale else ''})"
    )
    same_decision = (result.margin > 0) == (artifact_margin > 0) or abs(artifact_margin) <= 0.01
    return (
        delta <= 5e-3
        and same_decision
        and refused is not None
        and refused.status == 403
        and stale is not None
        and stale.status == 403
    )


def _booster(model_id: str) -> bytes:
    from models.registry import Registry

    return Registry().load(model_id).booster_bytes()


def _describe_evm_ledger(app: Any, echo: Callable[[str], None]) -> None:
    backend = app.state.vault.ledger.backend
    echo(
        f"     consent ledger: the ConsentLedger contract (Vyper, compiled from source) at {backend.address} on an "
        f"in-process EVM chain (py-evm, chain id {backend.chain_id}); patients sign grants to it (EIP-712)"
    )


def _evm_replica_agrees(app: Any, echo: Callable[[str], None]) -> bool:
    """A read-only replica rebuilds the ledger from the contract's events alone: the same entries and roots."""
    ledger = app.state.vault.ledger
    replica = ledger.backend.replica()
    size = replica.size()
    same = (
        size == ledger.size()
        and replica.entry_bytes(0, size) == ledger.backend.entry_bytes(0, size)
        and replica.sync()[1] == ledger.grant_root()
    )
    echo(
        f"     rebuilt from the contract's events by a read-only replica: {size} entries, the same log and grant "
        f"root: {'yes' if same else 'NO'}"
    )
    return bool(same)
