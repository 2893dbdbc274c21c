"""One human line per FHIR resource, for the CLI and the demo."""

from __future__ import annotations

from typing import Any

__all__ = ["summarize"]


def summarize(resource: dict[str, Any]) -> str:
    """One human line for a resource: its type, what it is, and its value or date."""
    kind = resource.get("resourceType", "?")
    code = resource.get("code") or resource.get("medicationCodeableConcept") or {}
    label = code.get("text") or next((c.get("display") for c in code.get("coding", []) if c.get("display")), "")
    if kind == "Patient":
        name = (resource.get("name") or [{}])[0]
        label = " ".join([*name.get("given", []), name.get("family", "")]).strip()
        return f"Patient {label}, born {resource.get('birthDate', '?')}"
    value = ""
    if "valueQuantity" in resource:
        q = resource["valueQuantity"]
        value = f" = {q.get('value')} {q.get('unit', '')}".rstrip()
    elif "component" in resource:
        parts = [f"{c['valueQuantity'].get('value')}" for c in resource["component"] if "valueQuantity" in c]
        value = f" = {'/'.join(parts)}" if parts else ""
    when = resource.get("effectiveDateTime") or resource.get("onsetDateTime") or resource.get("authoredOn") or ""
    return f"{kind} {label}{value}{'  (' + when[:10] + ')' if when else ''}"
