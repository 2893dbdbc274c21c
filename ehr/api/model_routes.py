"""Risk-model routes: the model cards, clinicians' evaluation-key sessions, and encrypted scoring.

``GET /models`` and ``GET /models/{model}`` describe the served models (card, features, scoring-grant catalogue;
never the trees). ``POST /models/sessions`` registers a clinician's CKKS evaluation context (the raw bytes,
``application/octet-stream``) and answers with its session id. ``POST /models/{model}/score`` takes::

    {"session": "<session id>", "grant": "<scoring grant id>", "usedMask": "<16 hex digits>",
     "ciphertext": "<base64 of the encrypted features>"}

checks the scoring grant (purpose ``model:<id>``, held by the caller, active, scope covering ``usedMask``) and
answers 403 before any homomorphic work when it does not hold; then it returns the encrypted margin, base64, which
only the caller's secret key opens. Errors are FHIR ``OperationOutcome``s: 400 for a body or a ciphertext that
does not parse or fit the evaluation parameters, 403 as above, 404 for an unknown model, 409 for a session that is
not open (register the keys again), 413 for a body over the limit, 422 for a mask that does not fit the model.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ehr.api.deps import ConsentsDep, CurrentPrincipal, SettingsDep, read_body
from ehr.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unprocessable
from ehr.fhir import parse_json
from ehr.identity import Role
from ehr.policy import Principal
from models.errors import FeatureError, ModelError, SessionError, UnknownModel
from models.he import HeError
from models.service import ScoringService, ServedModel

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
    # The grant first: a refused request costs no homomorphic work.
    await run_in_threadpool(consents.scoring_grant, principal, bytes.fromhex(grant_hex), served.model_id, used_mask)
    try:
        ciphertext = base64.b64decode(_field(body, "ciphertext"), validate=True)
    except binascii.Error as exc:
        raise InvalidRequest("'ciphertext' is not base64") from exc
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
    return JSONResponse(
        {"model": served.model_id, "usedMask": format(used_mask, "016x"), "reply": base64.b64encode(reply).decode()}
    )
