"""Turning service results into FHIR responses: sealed Binaries, Bundles, headers, outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from fastapi.responses import JSONResponse, Response

from ehr.envelope import Envelope
from ehr.fhir import FHIR_JSON, operation_outcome
from ehr.service import Page, WriteResult, instant
from ehr.store import VersionRecord
from ehr.transaction import PlannedEntry

__all__ = ["bundle_response", "fhir_response", "history_bundle", "sealed_response", "searchset", "write_response"]


def fhir_response(body: dict[str, Any] | None, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if body is None:
        return Response(status_code=status, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers, media_type=FHIR_JSON)


def sealed_binary(record: VersionRecord) -> dict[str, Any]:
    assert record.sealed is not None
    assert record.key is not None
    return Envelope(record.sealed, record.key).to_binary(instant(record.last_updated))


def _version_headers(version_id: int, last_updated: Any) -> dict[str, str]:
    return {"ETag": f'W/"{version_id}"', "Last-Modified": format_datetime(last_updated, usegmt=True)}


def sealed_response(record: VersionRecord) -> Response:
    return fhir_response(sealed_binary(record), headers=_version_headers(record.version_id, record.last_updated))


def write_response(result: WriteResult, base: str) -> Response:
    headers = _version_headers(result.version_id, result.last_updated)
    if result.deleted:
        text = f"{result.resource_type}/{result.resource_id} deleted" if result.changed else "already deleted"
        return fhir_response(operation_outcome("information", "informational", text), 200, headers)
    headers["Location"] = f"{base}/{result.location}"
    verb = "created" if result.created else "updated"
    text = f"{result.resource_type}/{result.resource_id} {verb}: version {result.version_id}, sealed to the patient"
    return fhir_response(
        operation_outcome("information", "informational", text), 201 if result.created else 200, headers
    )


def _links(base_path: str, params: Sequence[tuple[str, str]], page: Page) -> list[dict[str, str]]:
    def url(offset: int) -> str:
        query = [(k, v) for k, v in params if k not in ("_offset", "_count")]
        query += [("_count", str(page.count)), ("_offset", str(offset))]
        return f"{base_path}?{urlencode(query)}"

    links = [{"relation": "self", "url": url(page.offset)}, {"relation": "first", "url": url(0)}]
    if page.count and page.offset + page.count < page.total:
        links.append({"relation": "next", "url": url(page.offset + page.count)})
    if page.count and page.offset > 0:
        links.append({"relation": "previous", "url": url(max(0, page.offset - page.count))})
    if page.count:
        last = max(0, (page.total - 1) // page.count * page.count)
        links.append({"relation": "last", "url": url(last)})
    return links


def searchset(base: str, resource_type: str, params: Sequence[tuple[str, str]], page: Page) -> dict[str, Any]:
    entries = [
        {
            "fullUrl": f"{base}/{r.resource_type}/{r.resource_id}",
            "resource": sealed_binary(r),
            "search": {"mode": "match"},
        }
        for r in page.records
        if r.key is not None
    ]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": page.total,
        "link": _links(f"{base}/{resource_type}", params, page),
        "entry": entries,
    }


def history_bundle(base: str, path: str, params: Sequence[tuple[str, str]], page: Page) -> dict[str, Any]:
    entries = []
    for r in page.records:
        entry: dict[str, Any] = {"fullUrl": f"{base}/{r.resource_type}/{r.resource_id}"}
        if r.sealed is not None and r.key is not None:
            entry["resource"] = sealed_binary(r)
        url = r.resource_type if r.method == "POST" else f"{r.resource_type}/{r.resource_id}"
        entry["request"] = {"method": r.method, "url": url}
        status = "201 Created" if r.method == "POST" else ("204 No Content" if r.method == "DELETE" else "200 OK")
        entry["response"] = {"status": status, "etag": f'W/"{r.version_id}"', "lastModified": instant(r.last_updated)}
        entries.append(entry)
    return {
        "resourceType": "Bundle",
        "type": "history",
        "total": page.total,
        "link": _links(f"{base}/{path}", params, page),
        "entry": entries,
    }


def bundle_response(base: str, results: list[tuple[PlannedEntry, WriteResult]]) -> Response:
    entries = []
    for _, result in results:
        status = "204 No Content" if result.deleted else "201 Created" if result.created else "200 OK"
        response: dict[str, str] = {
            "status": status,
            "etag": f'W/"{result.version_id}"',
            "lastModified": instant(result.last_updated),
        }
        if not result.deleted:
            response["location"] = f"{result.location}"
        entries.append({"response": response})
    return fhir_response({"resourceType": "Bundle", "type": "transaction-response", "entry": entries})
