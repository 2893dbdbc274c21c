"""Risk-model routes: the model cards, clinicians' evaluation-key sessions, and encrypted scoring.

``GET /models`` and ``GET /models/{model}`` describe the served models (card, features, scoring-grant catalogue;
never the trees). ``POST /models/sessions`` registers a clinician's CKKS evaluation context (the raw bytes,
``application/octet-stream``) and answers with its session id. ``POST /models/{model}/score`` takes::

    {"session": "<session id>", "grant": "<scoring grant id>", "usedMask": "<16 hex digits>",
     "ciphertext": "<base64 of the encrypted features>", "attestation": "<base64 of the proof of consent>"}

Before any homomorphic work it checks the scoring grant (purpose ``model:<id>``, held by the caller, active,
scope covering ``usedMask``) and the zero-knowledge attestation (:mod:`zk.attestation`): made by the caller, for
this model and mask, naming a grant root the ledger accepts now (:mod:`consent_chain.root_history`), ``t`` within
the window of the service's clock, the request hash recomputed from the evaluation keys' digest (the session id)
and the ciphertext, and a Groth16 proof that verifies. A refusal is a 403 naming the reason. A request is scored
once: one whose request hash already has an ATTEST entry on the ledger is refused (409) before anything else is
checked, or the same attestation could be sent again and again within the window, each time evaluated and
recorded as another valid-looking ATTEST entry. Then it evaluates,
appends an ATTEST entry (request hash, model, grant root, and the attestation) to the consent ledger, and returns
the encrypted margin, base64, which only the caller's secret key opens, with the entry's index.

Errors are FHIR ``OperationOutcome``s: 400 for a body or a ciphertext that does not parse or fit the evaluation
parameters, 403 as above, 404 for an unknown model, 409 for a session that is not open (register the keys again)
or a request already scored, 413 for a body over the limit, 422 for a mask that does not fit the model.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from consent_chain.entries import AttestEntry
from consent_chain.errors import AppendRefused
from consent_chain.ledger import Ledger
from ehr.api.deps import ConsentsDep, CurrentPrincipal, SettingsDep, read_body
from ehr.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unprocessable
from ehr.fhir import parse_json
from ehr.identity import Role
from ehr.policy import Principal
from ehr.zk_keys import ConsentKeys
from models.errors import FeatureError, ModelError, SessionError, UnknownModel
from models.he import HeError
from models.service import ScoringService, ServedModel
from zk.attestation import Attestation, AttestationRefused, Refusal, check_attestation
from zk.consent_circuit import model_field

router = APIRouter(tags=["models"])

_MASK_RE = re.compile(r"^(0x)?[0-9a-fA-F]{1,16}$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")


async def get_scoring(request: Request) -> ScoringService:
    scoring: ScoringService | None = request.app.state.scoring
    if scoring is None:
        raise NotFound("this server scores with no models (PCHR_MODELS is empty)")
    return scoring


ScoringDep = Annotated[ScoringService, Depends(get_scoring)]


def _model(scoring: ScoringService, ref: str) -> ServedModel:
    try:
        return scoring.model(ref)
    except UnknownModel as exc:
        raise NotFound(str(exc)) from exc


def _clinician(principal: Principal) -> None:
    if principal.role is not Role.CLINICIAN:
        raise Forbidden("risk scores are requested by clinicians")


@router.get("/models")
async def list_models(scoring: ScoringDep) -> Response:
    return JSONResponse({"models": [m.describe() for m in scoring.models()]})


@router.get("/models/{ref}")
async def read_model(ref: str, scoring: ScoringDep) -> Response:
    return JSONResponse(_model(scoring, ref).describe())


@router.post("/models/sessions")
async def open_session(
    request: Request, principal: CurrentPrincipal, scoring: ScoringDep, settings: SettingsDep
) -> Response:
    """Register the caller's evaluation context (raw bytes); 201 with the session id."""
    _clinician(principal)
    context = await read_body(request, settings.max_context_bytes)
    try:
        session = await run_in_threadpool(scoring.open_session, principal.address, context)
    except HeError as exc:
        raise InvalidRequest(f"not a usable evaluation context: {exc}") from exc
    return JSONResponse(
        {"session": session.session_id, "bytes": session.size, "expires": session.expires.isoformat()},
        status_code=201,
    )


@router.delete("/models/sessions/{session_id}")
async def close_session(session_id: str, principal: CurrentPrincipal, scoring: ScoringDep) -> Response:
    try:
        scoring.close_session(principal.address, session_id)
    except SessionError as exc:
        raise NotFound(str(exc)) from exc
    return Response(status_code=204)


def _field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise InvalidRequest(f"a score request needs {name!r} (a string)")
    return value


@router.post("/models/{ref}/score")
async def score(
    ref: str,
    request: Request,
    principal: CurrentPrincipal,
    scoring: ScoringDep,
    consents: ConsentsDep,
    settings: SettingsDep,
) -> Response:
    _clinician(principal)
    body = parse_json(await read_body(request, settings.max_query_bytes))
    served = _model(scoring, ref)
    session_id = _field(body, "session")
    grant_hex = _field(body, "grant").lower()
    mask_hex = _field(body, "usedMask")
    if not _HEX64_RE.match(grant_hex):
        raise InvalidRequest("'grant' is a grant id: 64 hex digits")
    if not _MASK_RE.match(mask_hex):
        raise InvalidRequest("'usedMask' is a 64-bit mask in hex (at most 16 digits)")
    used_mask = int(mask_hex, 16)
    try:
        served.artifact.spec.check_mask(used_mask)
    except FeatureError as exc:
        raise Unprocessable(str(exc)) from exc
    if not _HEX64_RE.match(session_id):
        raise InvalidRequest("'session' is a session id: 64 hex digits")
    try:
        ciphertext = base64.b64decode(_field(body, "ciphertext"), validate=True)
        proof = base64.b64decode(_field(body, "attestation"), validate=True)
    except binascii.Error as exc:
        raise InvalidRequest("'ciphertext' and 'attestation' are base64") from exc
    # Consent before any homomorphic work: the public rule (the proof against the ledger), then the vault's own
    # record of the grant (revoked or expired since the proof's root, scope).
    keys: ConsentKeys = request.app.state.consent_keys
    attestation = await run_in_threadpool(
        _checked_attestation, request, principal, served, used_mask, session_id, ciphertext, proof, keys
    )
    await run_in_threadpool(consents.scoring_grant, principal, bytes.fromhex(grant_hex), served.model_id, used_mask)
    try:
        reply = await run_in_threadpool(
            scoring.score, principal.address, session_id, served.model_id, ciphertext, used_mask
        )
    except SessionError as exc:
        raise Conflict(str(exc)) from exc
    except HeError as exc:
        raise InvalidRequest(f"the encrypted query does not fit the model's evaluation: {exc}") from exc
    except ModelError as exc:
        raise Unprocessable(str(exc)) from exc
    s = attestation.statement
    # Checked again: two copies of one request sent at once both passed the check above, and the evaluation takes
    # seconds. This narrows the race to the append; a copy that still slips through, the attestations audit names.
    await run_in_threadpool(_not_scored_yet, consents.ledger, s.request_hash)
    entry = AttestEntry(s.request_hash, model_field(served.model_id), s.root, attestation.to_bytes())
    try:
        (appended,) = await run_in_threadpool(consents.ledger.append, [entry])
    except AppendRefused as exc:
        raise Conflict(f"the consent ledger refused the attestation ({exc.reason}): {exc}") from exc
    return JSONResponse(
        {
            "model": served.model_id,
            "usedMask": format(used_mask, "016x"),
            "reply": base64.b64encode(reply).decode(),
            "attestation": {"entryIndex": appended.index, "requestHash": format(s.request_hash, "064x")},
        }
    )


def _checked_attestation(
    request: Request,
    principal: Principal,
    served: ServedModel,
    used_mask: int,
    session_id: str,
    ciphertext: bytes,
    proof: bytes,
    keys: ConsentKeys,
) -> Attestation:
    """The request's attestation, checked against the caller, the ledger and the ciphertext (403 otherwise)."""
    try:
        attestation = Attestation.from_bytes(proof)
    except AttestationRefused as exc:
        raise InvalidRequest(f"the attestation does not parse: {exc}") from exc
    _not_scored_yet(request.app.state.consents.ledger, attestation.statement.request_hash)
    if attestation.grantee != principal.address:
        raise Forbidden("the attestation was made for another grantee")
    if attestation.model_id != served.model_id or attestation.statement.used_mask != used_mask:
        raise Forbidden("the attestation is for another model or another used-feature mask")
    window = request.app.state.settings.attest_window
    now, known_roots, retired = request.app.state.consents.ledger.known_roots(window)
    expected = attestation.request_hash_for(context_digest=bytes.fromhex(session_id), ciphertext=ciphertext)
    try:
        check_attestation(
            keys.prepared,
            attestation,
            known_roots=known_roots,
            now=now,
            window_seconds=window,
            expected_request_hash=expected,
            retired=retired,
        )
    except AttestationRefused as exc:
        if exc.reason is Refusal.MALFORMED:
            raise InvalidRequest(str(exc)) from exc
        raise Forbidden(f"the proof of consent is refused: {exc}") from exc
    return attestation


def _not_scored_yet(ledger: Ledger, request_hash: int) -> None:
    """409 if the ledger already holds an ATTEST entry for this request: a request is scored once."""
    scored = ledger.attestation_entry(request_hash)
    if scored is not None:
        raise Conflict(f"this request was already scored (ATTEST entry {scored}): a request is scored once")
