"""Planning a FHIR transaction Bundle: assign ids and resolve ``urn:uuid`` references, with no I/O.

FHIR R4B section 3.1.0.11 (https://hl7.org/fhir/R4B/http.html#trules): entries that POST get new ids; every
reference in the Bundle to an entry's ``fullUrl`` is rewritten to the entry's new ``Type/id``; the outcome is
reported in the entry order of the request. The vault (sealing on the server) and the gateway (sealing on the
client, which must fix ids before it seals) share this planner, so both resolve a Bundle the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ehr.errors import InvalidRequest
from ehr.identity import normalize_address

__all__ = ["PlannedEntry", "assign_patient", "plan_transaction"]

_URL_RE = re.compile(r"^([A-Z][A-Za-z]{1,63})(?:/([A-Za-z0-9\-.]{1,64}))?$")
_METHODS = ("POST", "PUT", "DELETE")


@dataclass(frozen=True)
class PlannedEntry:
    index: int
    method: str
    resource_type: str
    resource_id: str
    resource: dict[str, Any] | None  # plain JSON with references resolved, or a sealed Binary as given
    if_match: str | None


def _rewrite(node: Any, mapping: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value in mapping:
                out[key] = mapping[value]
            else:
                out[key] = _rewrite(value, mapping)
        return out
    if isinstance(node, list):
        return [_rewrite(item, mapping) for item in node]
    return node


def _dangling_urns(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = []
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value.startswith("urn:uuid:"):
                found.append(value)
            else:
                found.extend(_dangling_urns(value))
        return found
    if isinstance(node, list):
        return [urn for item in node for urn in _dangling_urns(item)]
    return []


def plan_transaction(
    bundle: dict[str, Any], new_id: Callable[[str], str], *, id_of_sealed: Callable[[dict[str, Any]], str]
) -> list[PlannedEntry]:
    """Check a transaction Bundle's shape and return its entries with ids assigned and references resolved.

    ``new_id(resource_type)`` supplies the id of each POSTed plain resource.
    ``id_of_sealed`` returns the resource id inside a sealed Binary (sealed creates carry their own id,
    because the id is part of what was sealed).
    """
    if bundle.get("resourceType") != "Bundle":
        raise InvalidRequest("expected a Bundle", expression="Bundle.resourceType")
    if bundle.get("type") != "transaction":
        raise InvalidRequest("only Bundles of type 'transaction' are processed here", expression="Bundle.type")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise InvalidRequest("Bundle.entry must be a list", expression="Bundle.entry")

    mapping: dict[str, str] = {}
    staged: list[tuple[int, str, str, str, dict[str, Any] | None, str | None]] = []
    targets: set[tuple[str, str]] = set()
    for i, entry in enumerate(entries):
        where = f"Bundle.entry[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
            raise InvalidRequest("every transaction entry needs a request", expression=f"{where}.request")
        request = entry["request"]
        method, url = request.get("method"), request.get("url")
        if method not in _METHODS:
            raise InvalidRequest(f"request.method must be one of {', '.join(_METHODS)}", expression=f"{where}.request")
        match = _URL_RE.match(url) if isinstance(url, str) else None
        if not match:
            raise InvalidRequest("request.url must be 'Type' or 'Type/id'", expression=f"{where}.request.url")
        resource_type, url_id = match.groups()
        resource = entry.get("resource")
        sealed = isinstance(resource, dict) and resource.get("resourceType") == "Binary" and resource_type != "Binary"
        if method == "DELETE":
            if url_id is None or resource is not None:
                raise InvalidRequest("DELETE needs request.url 'Type/id' and no resource", expression=where)
            resource_id = url_id
        else:
            if not isinstance(resource, dict):
                raise InvalidRequest(f"{method} needs a resource", expression=f"{where}.resource")
            if not sealed and resource.get("resourceType") != resource_type:
                raise InvalidRequest("resource type does not match request.url", expression=f"{where}.resource")
            if method == "POST":
                if url_id is not None:
                    raise InvalidRequest("POST request.url must be a type only", expression=f"{where}.request.url")
                resource_id = id_of_sealed(resource) if sealed else new_id(resource_type)
            else:
                if url_id is None:
                    raise InvalidRequest("PUT needs request.url 'Type/id'", expression=f"{where}.request.url")
                resource_id = url_id
                body_id = id_of_sealed(resource) if sealed else resource.get("id")
                if body_id != url_id:
                    raise InvalidRequest("resource id does not match request.url", expression=f"{where}.resource.id")
        if (resource_type, resource_id) in targets:
            raise InvalidRequest(f"two entries target {resource_type}/{resource_id}", expression=where)
        targets.add((resource_type, resource_id))
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str) and full_url.startswith("urn:"):
            if full_url in mapping:
                raise InvalidRequest("duplicate fullUrl", expression=f"{where}.fullUrl")
            mapping[full_url] = f"{resource_type}/{resource_id}"
        if_match = request.get("ifMatch")
        staged.append(
            (i, method, resource_type, resource_id, resource, if_match if isinstance(if_match, str) else None)
        )

    planned = []
    for i, method, resource_type, resource_id, resource, if_match in staged:
        if resource is not None and resource.get("resourceType") != "Binary":
            resource = _rewrite(resource, mapping)
            resource["id"] = resource_id
            dangling = _dangling_urns(resource)
            if dangling:
                raise InvalidRequest(
                    "reference to a urn:uuid that is not the fullUrl of any entry in the Bundle",
                    expression=f"Bundle.entry[{i}].resource",
                )
        planned.append(PlannedEntry(i, method, resource_type, resource_id, resource, if_match))
    # FHIR processing order: DELETE, then POST, then PUT (GET is not accepted in a transaction here).
    order = {"DELETE": 0, "POST": 1, "PUT": 2}
    return sorted(planned, key=lambda e: (order[e.method], e.index))


def assign_patient(bundle: dict[str, Any], address: str) -> dict[str, Any]:
    """Make a Bundle's one Patient entry the pchr patient ``address``: ``PUT Patient/<address>``.

    Generated or exported Bundles name their patient by a ``urn:uuid`` or a local id; in pchr a patient's record
    is keyed by their address, so the uploader rebinds it. References to the old ``fullUrl`` are then resolved by
    :func:`plan_transaction` as usual; references to a local ``Patient/<id>`` are rewritten here.
    """
    try:
        address = normalize_address(address)  # the Patient's id is the address as the vault spells it (EIP-55)
    except ValueError as exc:
        raise InvalidRequest(f"the patient must be a pchr address (0x followed by 40 hex digits): {exc}") from exc
    entries = [e for e in bundle.get("entry", []) if isinstance(e, dict)]
    patients = [
        e for e in entries if isinstance(e.get("resource"), dict) and e["resource"].get("resourceType") == "Patient"
    ]
    if len(patients) > 1:
        raise InvalidRequest("the Bundle holds more than one Patient; upload one patient's record at a time")
    mapping: dict[str, str] = {}
    out = dict(bundle)
    new_entries = []
    for entry in entries:
        if patients and entry is patients[0]:
            old_id = entry["resource"].get("id")
            if isinstance(old_id, str):
                mapping[f"Patient/{old_id}"] = f"Patient/{address}"
            entry = {
                **entry,
                "resource": {**entry["resource"], "id": address},
                "request": {"method": "PUT", "url": f"Patient/{address}"},
            }
        new_entries.append(entry)
    out["entry"] = [_rewrite(e, mapping) if mapping else e for e in new_entries]
    return out
