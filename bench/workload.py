"""The records the benchmark writes: a realistic laboratory Observation of about 1.2 KB."""

from __future__ import annotations

import uuid
from typing import Any

__all__ = ["observation", "with_id"]


def observation(patient: str, value: float = 7.1) -> dict[str, Any]:
    """A fasting-glucose result as a lab system would send it (identifiers, category, range, notes)."""
    return {
        "resourceType": "Observation",
        "identifier": [
            {
                "system": "http://lab.example.org/identifiers/observation",
                "value": "LAB-2026-0227-004711",
            }
        ],
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                        "display": "Laboratory",
                    }
                ]
            }
        ],
        "code": {
            "coding": [
                {"system": "http://loinc.org", "code": "1558-6", "display": "Fasting glucose [Moles/volume] in Serum"},
            ],
            "text": "Fasting glucose",
        },
        "subject": {"reference": f"Patient/{patient}"},
        "encounter": {"reference": "Encounter/enc-2026-02-27-0830"},
        "effectiveDateTime": "2026-02-27T08:30:00Z",
        "issued": "2026-02-27T10:12:44.000Z",
        "performer": [{"reference": "Organization/lab-central", "display": "Central Laboratory"}],
        "valueQuantity": {"value": value, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"},
        "interpretation": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                        "code": "H",
                        "display": "High",
                    }
                ]
            }
        ],
        "note": [{"text": "Sample drawn after an overnight fast; repeat in three months."}],
        "referenceRange": [
            {
                "low": {"value": 3.9, "unit": "mmol/L"},
                "high": {"value": 5.5, "unit": "mmol/L"},
                "text": "3.9-5.5 mmol/L (fasting)",
            }
        ],
    }


def with_id(resource: dict[str, Any]) -> dict[str, Any]:
    """A copy with a fresh id, as a client-sealed create needs."""
    return {**resource, "id": str(uuid.uuid4())}
