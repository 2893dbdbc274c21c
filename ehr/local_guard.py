"""Which requests a service on loopback that holds an actor's keys may answer: none a web page can forge.

``pchr gateway`` listens on 127.0.0.1 with no login: whoever reaches it acts with the actor's keys and reads the
actor's records in plaintext, as with a local wallet. Listening on loopback keeps other machines out, but not the
web pages in the actor's own browser, which can send requests to 127.0.0.1 in two ways this module refuses:

* **DNS rebinding** (a page on ``evil.example`` re-points that name at 127.0.0.1, so its script reads the gateway as
  same-origin): the browser still names ``evil.example`` in the ``Host`` header, so only requests whose ``Host`` is
  a loopback name (``localhost``, an address in 127.0.0.0/8, ``[::1]``) are answered. The same defence as the
  Ethereum JSON-RPC servers' ``--http.vhosts`` and Jupyter's ``allow_remote_access``.
* **Cross-site requests** (a form or ``fetch`` on any page posting to ``http://127.0.0.1:port``): a browser names the
  page in ``Origin`` on every cross-origin request but a plain GET, so a request whose ``Origin`` is not the
  gateway's own is refused; and bodies must be FHIR JSON (``application/fhir+json`` or ``application/json``), which
  no page can send cross-origin without a CORS preflight that the gateway never grants. A cross-site GET is still
  sent, but its answer is unreadable to the page (no CORS headers) and a GET changes nothing.

``POST [type]/_search`` keeps the form encoding FHIR specifies for it: a search changes nothing, and its answer is
unreadable cross-origin. Clients that are not browsers (fhirpy, curl, SMART apps' back ends) send a loopback ``Host``
and no ``Origin``, and are unaffected.

Pure: a function of the request's method, path and headers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Final

from ehr.errors import Forbidden, UnsupportedMediaType, VaultError

__all__ = ["is_loopback_host", "refusal"]

JSON_MEDIA_TYPES: Final = frozenset({"application/fhir+json", "application/json"})
_WRITES: Final = frozenset({"POST", "PUT", "PATCH"})
_SHOWN: Final = 100  # characters of a refused header quoted back: enough to recognise, not a reflection channel


def _host_name(host: str) -> str:
    """The name in a ``Host`` header value, without its port, lower-cased (an IPv6 literal keeps its brackets)."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host if end < 0 else host[: end + 1]
    return host.rsplit(":", 1)[0] if ":" in host else host


def is_loopback_host(host: str) -> bool:
    """Whether a ``Host`` header value names this machine's loopback interface: ``localhost``, an address in
    127.0.0.0/8 or ``[::1]``, with any port."""
    name = _host_name(host)
    if name == "localhost":
        return True
    if name.startswith("["):  # an IPv6 literal, whole: "[::1]"
        if not name.endswith("]"):
            return False
        name = name[1:-1]
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def refusal(method: str, path: str, headers: Mapping[str, str]) -> VaultError | None:
    """The error to answer instead of serving this request, or None to serve it (module docstring).

    ``headers`` is looked up with lower-case names (Starlette's ``Headers`` are case-insensitive).
    """
    host = headers.get("host", "")
    if not is_loopback_host(host):
        return Forbidden(
            f"this gateway answers only requests addressed to 127.0.0.1 or localhost, not {host[:_SHOWN]!r}: a web "
            "page that points its own name at this machine (DNS rebinding) must not read your records"
        )
    origin = headers.get("origin")
    if origin is not None and origin.lower() != f"http://{host.strip().lower()}":
        return Forbidden(
            f"a web page at {origin[:_SHOWN]!r} may not use this gateway: cross-origin requests from browsers are "
            "refused, since the gateway acts with your keys"
        )
    if method.upper() in _WRITES and not path.endswith("/_search"):
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type not in JSON_MEDIA_TYPES:
            return UnsupportedMediaType(
                f"send FHIR JSON (Content-Type: application/fhir+json), not {media_type[:_SHOWN] or 'no media type'!r}"
            )
    return None
