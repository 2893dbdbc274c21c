"""Zero-knowledge routes: the consent circuit's keys, and the audit of the ledger's ATTEST entries.

``GET /zk`` says which circuit and which setup (development or ceremony) the service uses; ``GET
/zk/verifying-key`` is snarkjs's ``verification_key.json``; ``GET /zk/proving-key`` the ``.zkey`` bytes clinicians
prove with. ``GET /ledger/attestations`` verifies every ATTEST entry the way ``pchr audit attestations`` does
(the server's own view; an auditor runs the command to depend on nothing but public data).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from consent_chain.attest_audit import audit_attestations
from ehr.api.deps import LedgerDep, SettingsDep
from ehr.errors import NotFound
from ehr.zk_keys import ConsentKeys

router = APIRouter(tags=["zk"])


async def get_consent_keys(request: Request) -> ConsentKeys:
    keys: ConsentKeys | None = request.app.state.consent_keys
    if keys is None:
        raise NotFound("this server scores with no models, so it attests nothing (PCHR_MODELS is empty)")
    return keys


ConsentKeysDep = Annotated[ConsentKeys, Depends(get_consent_keys)]


@router.get("/zk")
async def describe(keys: ConsentKeysDep, settings: SettingsDep) -> Response:
    return JSONResponse({**keys.describe(), "windowSeconds": settings.attest_window})


@router.get("/zk/verifying-key")
async def verifying_key(keys: ConsentKeysDep) -> Response:
    return JSONResponse(keys.verifying_key_json)


@router.get("/zk/proving-key")
async def proving_key(keys: ConsentKeysDep) -> Response:
    data = await run_in_threadpool(lambda: keys.zkey)
    return Response(data, media_type="application/octet-stream")


@router.get("/ledger/attestations")
async def attestations(keys: ConsentKeysDep, ledger: LedgerDep, settings: SettingsDep) -> Response:
    def run() -> list[dict[str, object]]:
        size = ledger.size()
        raw = ledger.backend.entry_bytes(0, size)
        return [
            {
                "entryIndex": f.index,
                "model": f.model_id,
                "grantee": f.grantee,
                "usedMask": format(f.used_mask, "016x") if f.used_mask is not None else None,
                "time": f.time,
                "verified": f.ok,
                "problem": f.problem,
            }
            for f in audit_attestations(raw, keys.prepared, window=settings.attest_window, domain=ledger.domain)
        ]

    found = await run_in_threadpool(run)
    return JSONResponse({"attestations": found, "verified": sum(1 for f in found if f["verified"])})
