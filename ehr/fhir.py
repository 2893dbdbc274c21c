"""FHIR R4B at the boundary: parse, validate, find the patient, and build outcomes and bundles.

The only module that imports ``fhir.resources``. Validation uses ``fhir.resources.R4B`` (FHIR 4.3.0,
wire-compatible with R4 4.0.1 for the resources pchr stores) and adds what the models do not check:
``Reference.reference`` syntax (FHIR R4B, section 2.3.0 "Literal references").

Spec: https://hl7.org/fhir/R4B/http.html (REST), https://hl7.org/fhir/R4B/operationoutcome.html.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.domainresource import DomainResource
from fhir.resources.R4B.reference import Reference
from pydantic import BaseModel, ValidationError

from ehr._json import MAX_DEPTH, JsonTooDeep, loads
from ehr.errors import InvalidRequest, Unprocessable, VaultError
from ehr.identity import normalize_address

__all__ = [
    "FHIR_JSON",
    "ID_RE",
    "canonical_json",
    "is_resource_type",
    "operation_outcome",
    "outcome_for",
    "parse_json",
    "patient_of",
    "resource_types",
    "validate_resource",
]

FHIR_JSON = "application/fhir+json"
ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_TYPE = r"[A-Z][A-Za-z]{1,63}"
_ID = r"[A-Za-z0-9\-.]{1,64}"
_RELATIVE_REF = re.compile(rf"^({_TYPE})/({_ID})(/_history/{_ID})?$")
_ABSOLUTE_REF = re.compile(rf"^https?://[^\s/]+(/[^\s]*)?/({_TYPE})/({_ID})(/_history/{_ID})?$")
_URN_REF = re.compile(
    r"^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    r"|^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$"
)
_CONTAINED_REF = re.compile(rf"^#({_ID})?$")

# Elements that put a resource in a patient's compartment, in the order they are tried.
_PATIENT_ELEMENTS = ("subject", "patient", "beneficiary")


def parse_json(body: bytes) -> dict[str, Any]:
    """Parse a request body as a JSON object: UTF-8, nested at most ``MAX_DEPTH`` (64) levels (400 otherwise).

    The depth is checked before parsing, so no body can make ``json`` recurse deep enough to crash the process.
    """
    try:
        data = loads(body)
    except JsonTooDeep:
        raise InvalidRequest(
            f"body is nested deeper than {MAX_DEPTH} levels of arrays and objects (FHIR resources need far fewer)"
        ) from None
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"body is not UTF-8 JSON: {exc.reason} at byte {exc.start}") from exc
    except ValueError as exc:
        raise InvalidRequest(f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("body must be a JSON object (a FHIR resource)")
    return data


@cache
def _model(resource_type: str) -> type[DomainResource] | None:
    if not re.fullmatch(_TYPE, resource_type):
        return None
    try:
        cls = get_fhir_model_class(resource_type)
    except ValueError:
        return None
    if isinstance(cls, type) and issubclass(cls, DomainResource) and cls.__name__ == resource_type:
        return cls
    return None


def is_resource_type(name: str) -> bool:
    """True for a FHIR R4B resource type the vault stores (every DomainResource)."""
    return _model(name) is not None


@cache
def resource_types() -> tuple[str, ...]:
    from fhir.resources.R4B import fhirtypes

    names = (n[: -len("Type")] for n in dir(fhirtypes) if n.endswith("Type") and n[:1].isupper())
    return tuple(sorted(n for n in names if is_resource_type(n)))


def _walk_references(node: object, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, BaseModel):
        if isinstance(node, Reference) and node.reference is not None:
            yield f"{path}.reference", node.reference
        for name in type(node).model_fields:
            value = getattr(node, name)
            if value is not None:
                yield from _walk_references(value, f"{path}.{name}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _walk_references(item, f"{path}[{i}]")


def check_reference(reference: str, expression: str) -> None:
    """Raise InvalidRequest unless ``reference`` is a literal reference FHIR allows."""
    for pattern in (_RELATIVE_REF, _ABSOLUTE_REF):
        match = pattern.match(reference)
        if match:
            ref_type = match.group(1) if pattern is _RELATIVE_REF else match.group(2)
            if not is_resource_type(ref_type) and ref_type not in ("Binary", "Bundle"):
                raise InvalidRequest(f"reference names an unknown resource type {ref_type!r}", expression=expression)
            return
    if _URN_REF.match(reference) or _CONTAINED_REF.match(reference):
        return
    raise InvalidRequest(
        "reference is not a valid literal reference (Type/id, URL, urn:uuid or #id)", expression=expression
    )


def validate_resource(data: dict[str, Any], *, expected_type: str | None = None) -> dict[str, Any]:
    """Validate a resource with fhir.resources (R4B) and return it (a shallow copy of the input).

    Raises InvalidRequest (400) for an unknown or mismatched ``resourceType``, a schema violation, or a
    malformed reference; the message names the element, never its value.
    """
    resource_type = data.get("resourceType")
    if not isinstance(resource_type, str):
        raise InvalidRequest("resource has no resourceType", expression="resourceType")
    if expected_type is not None and resource_type != expected_type:
        raise InvalidRequest(
            f"resourceType {resource_type!r} does not match the endpoint's type {expected_type!r}",
            expression="resourceType",
        )
    model = _model(resource_type)
    if model is None:
        raise InvalidRequest(f"unknown or unsupported resourceType {resource_type[:64]!r}", expression="resourceType")
    try:
        resource = model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        # Pydantic's message may echo the input value: keep only the reason, never the data.
        reason = first.get("msg", "invalid value").split(" [", 1)[0]
        raise InvalidRequest(
            f"{resource_type} is not valid FHIR R4B: {where}: {_scrub(reason)} ({exc.error_count()} problem(s))",
            expression=f"{resource_type}.{where}" if where else resource_type,
        ) from None
    for expression, reference in _walk_references(resource, resource_type):
        check_reference(reference, expression)
    # The input is now known to be valid R4B JSON: keep it as sent. (Re-serialising the model costs twice
    # the validation itself and changes nothing a reader sees.)
    return dict(data)


def canonical_json(resource: dict[str, Any]) -> bytes:
    """The bytes that get sealed: compact JSON with keys in a fixed order."""
    return json.dumps(resource, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def _scrub(reason: str) -> str:
    # fhir.resources messages are generic ("does not match spec regex") but may quote input: drop quotes.
    return re.sub(r"'[^']*'", "'…'", reason)[:200]


def patient_of(resource: dict[str, Any]) -> str | None:
    """The patient (address) whose compartment holds this resource, or None if it names none.

    Raises Unprocessable if it points at a patient that is not a pchr address (the vault seals to actors).
    """
    if resource.get("resourceType") == "Patient":
        rid = resource.get("id")
        return _patient_id(rid, "Patient.id") if rid is not None else None
    for element in _PATIENT_ELEMENTS:
        ref = resource.get(element)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            match = _RELATIVE_REF.match(ref["reference"])
            if match and match.group(1) == "Patient":
                return _patient_id(match.group(2), f"{resource['resourceType']}.{element}")
    return None


def _patient_id(value: object, expression: str) -> str:
    try:
        return normalize_address(str(value))
    except ValueError:
        raise Unprocessable(
            "patient must be identified by their pchr address (Patient/0x...)", expression=expression
        ) from None


def operation_outcome(severity: str, code: str, diagnostics: str, *, expression: str | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def outcome_for(error: VaultError) -> dict[str, Any]:
    severity = "fatal" if error.status >= 500 else "error"
    return operation_outcome(severity, error.code, error.message, expression=error.expression)
