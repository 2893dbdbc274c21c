"""The vault's CapabilityStatement and SMART configuration documents."""

from __future__ import annotations

from functools import cache
from typing import Any

from ehr.fhir import resource_types

_INTERACTIONS = ["read", "vread", "update", "delete", "history-instance", "history-type", "create", "search-type"]
_SEARCH_PARAMS = [
    {"name": "patient", "type": "reference", "documentation": "The patient compartment (Patient/<address>)"},
    {"name": "_id", "type": "token"},
    {"name": "_lastUpdated", "type": "date"},
]


@cache
def capability_statement(software_version: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-21",
        "kind": "instance",
        "software": {"name": "pchr vault", "version": software_version},
        "implementation": {
            "description": "pchr encrypted record vault: stores and serves sealed resources only (Binary, "
            "contentType application/pchr-sealed+json); it cannot read them."
        },
        "fhirVersion": "4.3.0",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": "SMART Backend Services: private_key_jwt (ES256K) at /auth/token; see "
                    "/.well-known/smart-configuration",
                },
                "resource": [
                    {
                        "type": name,
                        "versioning": "versioned-update",
                        "readHistory": True,
                        "updateCreate": True,
                        "conditionalCreate": False,
                        "conditionalUpdate": False,
                        "conditionalDelete": "not-supported",
                        "interaction": [{"code": code} for code in _INTERACTIONS],
                        "searchParam": _SEARCH_PARAMS,
                    }
                    for name in resource_types()
                ],
                "interaction": [{"code": "transaction"}],
            }
        ],
    }


def smart_configuration(base: str) -> dict[str, Any]:
    return {
        "token_endpoint": f"{base}/auth/token",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256K"],
        "scopes_supported": ["patient/*.cruds", "user/*.cruds", "system/*.rs", "patient/*.read", "patient/*.write"],
        "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
    }
