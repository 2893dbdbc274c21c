"""The vault's HTTP API: FHIR R4B REST over sealed storage, and SMART Backend Services authentication.

Build the ASGI app with :func:`create_app`; routers translate HTTP to :class:`ehr.service.Vault` calls and back.
"""

from ehr.api.app import create_app

__all__ = ["create_app"]
