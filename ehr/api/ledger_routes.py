"""The consent ledger's public read API: checkpoint, entries, proofs, nonces, grant roots.

Everything here is public data (hashes, signatures, ids): no token needed, so auditors verify from public
data alone. Grant-tree membership paths are the exception: they are served to the grant's parties only.
"""

from __future__ import annotations

import base64

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from ehr.api.deps import ConsentsDep, CurrentPrincipal, LedgerDep
from ehr.errors import Forbidden, InvalidRequest, NotFound
from ehr.identity import normalize_address

router = APIRouter(prefix="/ledger", tags=["ledger"])

MAX_PAGE = 1000


def _b64(items: list[bytes]) -> list[str]:
    return [base64.b64encode(i).decode() for i in items]


@router.get("/checkpoint")
async def checkpoint(ledger: LedgerDep) -> Response:
    """The latest checkpoint, a C2SP signed note (text/plain)."""
    return PlainTextResponse(await run_in_threadpool(ledger.checkpoint), headers={"Cache-Control": "no-store"})


@router.get("/key")
async def key(ledger: LedgerDep) -> Response:
    """The operator's verifier key (``name+hash+key``): auditors pin it once, out of band if they can."""
    return PlainTextResponse(ledger.signer.verifier.to_vkey() + "\n")


@router.get("/domain")
async def domain(ledger: LedgerDep) -> Response:
    """The EIP-712 domain grant and revocation signatures are bound to."""
    return JSONResponse(ledger.domain.to_json())


@router.get("/entries")
async def entries(ledger: LedgerDep, start: int = Query(ge=0), end: int = Query(ge=0)) -> Response:
    size = await run_in_threadpool(ledger.size)
    if end > size or start > end or end - start > MAX_PAGE:
        raise InvalidRequest(f"need 0 <= start <= end <= {size}, at most {MAX_PAGE} entries a page")
    raw = await run_in_threadpool(ledger.backend.entry_bytes, start, end)
    return JSONResponse({"start": start, "entries": _b64(raw)})


@router.get("/proof/inclusion")
async def inclusion(ledger: LedgerDep, index: int = Query(ge=0), size: int = Query(ge=1)) -> Response:
    if index >= size or size > await run_in_threadpool(ledger.size):
        raise InvalidRequest("need index < size <= the ledger's size")
    proof = await run_in_threadpool(ledger.inclusion_proof, index, size)
    return JSONResponse({"index": index, "size": size, "proof": _b64(proof)})


@router.get("/proof/consistency")
async def consistency(ledger: LedgerDep, old: int = Query(ge=1), new: int = Query(ge=1)) -> Response:
    if old > new or new > await run_in_threadpool(ledger.size):
        raise InvalidRequest("need 1 <= old <= new <= the ledger's size")
    proof = await run_in_threadpool(ledger.consistency_proof, old, new)
    return JSONResponse({"old": old, "new": new, "proof": _b64(proof)})


@router.get("/nonce/{address}")
async def nonce(address: str, ledger: LedgerDep) -> Response:
    try:
        patient = normalize_address(address)
    except ValueError:
        raise InvalidRequest("not an address") from None
    return JSONResponse({"address": patient, "nonce": await run_in_threadpool(ledger.next_nonce, patient)})


@router.get("/grant-roots")
async def grant_roots(ledger: LedgerDep) -> Response:
    """The grant root at every log size the tree was synced to (each checkpoint's size among them)."""
    roots = await run_in_threadpool(ledger.grant_roots)
    return JSONResponse({"roots": [{"size": n, "root": str(r)} for n, r in roots]})


@router.get("/grants/{grant_id}/path")
async def grant_path(grant_id: str, principal: CurrentPrincipal, ledger: LedgerDep, consents: ConsentsDep) -> Response:
    """The grant's membership path in the grant tree, for its patient or grantee (the consents table says who)."""
    try:
        gid = bytes.fromhex(grant_id)
    except ValueError:
        raise InvalidRequest("grant id is 64 hex digits") from None
    record = await run_in_threadpool(ledger.grant, gid)
    if record is None:
        raise NotFound("no such grant on the ledger")
    parties = {record.patient}
    policy = await run_in_threadpool(consents.policy, gid)
    if policy is not None:
        parties.add(policy.grantee)
    if principal.address not in parties:
        raise Forbidden("membership paths are served to the grant's parties only")
    size, root, path = await run_in_threadpool(ledger.grant_path, record.leaf_index)
    return JSONResponse({**path.to_json(), "root": str(root), "size": size})
