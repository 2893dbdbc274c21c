"""The pchr client SDK: talk to a vault as one actor, sealing on the way out and unsealing on the way in.

Everything the CLI, the gateway and the tests do with a vault goes through :class:`VaultClient`. Plaintext
exists only on the client's side: resources are validated (FHIR R4B) and sealed here, and the vault receives
sealed envelopes only. The patient's encryption key is fetched from the vault but trusted only after its
binding signature verifies against the patient's address, so a vault cannot slip in a key of its own.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from consent_chain.catalogue import ScopeCatalogue, read_catalogue
from consent_chain.eip712 import Domain, GrantMessage, RevokeMessage, sign
from consent_chain.errors import GrantError
from consent_chain.grants import READ_PURPOSES, Grant
from ehr._json import loads
from ehr.crypto import SealContext, seal, unseal, unwrap_key, wrap_key
from ehr.envelope import Envelope, EnvelopeError
from ehr.errors import DecryptionError
from ehr.fhir import canonical_json, patient_of, validate_resource
from ehr.identity import ActorKeys, ActorPublic, BindingError, Role, normalize_address
from ehr.tokens import ASSERTION_TYPE, make_client_assertion
from ehr.transaction import plan_transaction

__all__ = ["DEFAULT_SCOPES", "VaultClient", "VaultClientError"]

DEFAULT_SCOPES = {
    Role.PATIENT: "patient/*.cruds",
    Role.CLINICIAN: "user/*.cruds",
    Role.AUDITOR: "system/*.rs",
}
_FHIR_HEADERS = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}


class VaultClientError(Exception):
    """The vault refused a request; carries the HTTP status and the OperationOutcome (or OAuth error)."""

    def __init__(self, status: int, body: dict[str, Any] | None, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.body = body or {}
        self.message = message

    @classmethod
    def from_response(cls, response: httpx.Response) -> VaultClientError:
        try:
            body = loads(response.content)
        except ValueError:
            body = None
        message = response.reason_phrase
        if isinstance(body, dict):
            if body.get("resourceType") == "OperationOutcome" and body.get("issue"):
                message = body["issue"][0].get("diagnostics", message)
            elif "error" in body:
                message = f"{body['error']}: {body.get('error_description', '')}"
        return cls(response.status_code, body if isinstance(body, dict) else None, message)


class VaultClient:
    """A vault session for one actor. ``http`` is any httpx.Client whose base URL is the vault."""

    def __init__(
        self,
        http: httpx.Client,
        keys: ActorKeys,
        *,
        scope: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.http = http
        self.keys = keys
        self.scope = scope or DEFAULT_SCOPES[keys.role]
        self._clock = clock
        self._token: tuple[str, datetime] | None = None
        self._domain: Domain | None = None
        self._actors: dict[str, ActorPublic] = {}

    @classmethod
    def connect(cls, base_url: str, keys: ActorKeys, **kwargs: Any) -> VaultClient:
        return cls(httpx.Client(base_url=base_url, timeout=30.0), keys, **kwargs)

    def close(self) -> None:
        self.http.close()

    def now(self) -> datetime:
        """The client's clock (injectable for tests)."""
        return self._clock()

    def __enter__(self) -> VaultClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def address(self) -> str:
        return self.keys.address

    @property
    def base_url(self) -> str:
        return str(self.http.base_url).rstrip("/")

    # -- authentication -------------------------------------------------------------------------
    def register(self) -> None:
        """Register this actor's public keys with the vault (idempotent)."""
        response = self.http.post("/auth/register", json=self.keys.public().to_json())
        self._check(response)

    def access_token(self) -> str:
        now = self._clock()
        if self._token is not None and self._token[1] - timedelta(seconds=30) > now:
            return self._token[0]
        assertion = make_client_assertion(self.keys, f"{self.base_url}/auth/token", now=now)
        response = self.http.post(
            "/auth/token",
            data={
                "grant_type": "client_credentials",
                "scope": self.scope,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion,
            },
        )
        body = self._check(response)
        self._token = (body["access_token"], now + timedelta(seconds=int(body["expires_in"])))
        return self._token[0]

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**_FHIR_HEADERS, **kwargs.pop("headers", {}), "Authorization": f"Bearer {self.access_token()}"}
        return self.http.request(method, path, headers=headers, **kwargs)

    @staticmethod
    def _check(response: httpx.Response) -> dict[str, Any]:
        if response.status_code >= 400:
            raise VaultClientError.from_response(response)
        if not response.content:
            return {}
        try:
            body = loads(response.content)
        except ValueError as exc:
            raise VaultClientError(502, None, f"the vault's answer is not usable JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise VaultClientError(502, None, "the vault's answer is not a JSON object")
        return body

    def get_json(self, path: str, params: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        return self._check(self._request("GET", path, params=params))

    def get_bytes(self, path: str) -> bytes:
        response = self._request("GET", path)
        if response.status_code >= 400:
            raise VaultClientError.from_response(response)
        return response.content

    def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._check(self._request("POST", path, json=body))

    def post_bytes(self, path: str, data: bytes) -> dict[str, Any]:
        """POST raw bytes (``application/octet-stream``), e.g. a CKKS evaluation context."""
        return self._check(
            self._request("POST", path, content=data, headers={"Content-Type": "application/octet-stream"})
        )

    # -- keys -----------------------------------------------------------------------------------
    def actor(self, address: str) -> ActorPublic:
        """An actor's public record from the vault, trusted only after its binding signature verifies."""
        address = normalize_address(address)
        if address == self.address:
            address = self.address
            if address not in self._actors:
                self._actors[address] = self.keys.public()  # signing the binding costs ms: once per client
            return self._actors[address]
        if address not in self._actors:
            record = self.get_json(f"/auth/actors/{address}")
            try:
                actor = ActorPublic.from_json(record)
            except BindingError as exc:
                raise VaultClientError(
                    502, record, f"the vault served a key binding that does not verify: {exc}"
                ) from exc
            if actor.address != address:
                raise VaultClientError(502, record, "the vault served another actor's keys")
            self._actors[address] = actor
        return self._actors[address]

    # -- sealing --------------------------------------------------------------------------------
    def seal_resource(self, resource: dict[str, Any], version: int, *, patient: str | None = None) -> dict[str, Any]:
        """Validate and seal a resource (which must carry its id) for its patient; returns the sealed Binary."""
        resource = validate_resource(resource)
        return self._seal(resource, version, patient=patient)

    def _seal(self, resource: dict[str, Any], version: int, *, patient: str | None) -> dict[str, Any]:
        owner = patient_of(resource) or patient or (self.address if self.keys.role is Role.PATIENT else None)
        if owner is None:
            raise VaultClientError(422, None, f"{resource['resourceType']} names no patient; say whose record it is")
        recipient = self.actor(owner)
        if recipient.role is not Role.PATIENT:
            raise VaultClientError(422, None, f"{owner} is not a patient")
        resource["meta"] = {**resource.get("meta", {}), "versionId": str(version)}
        resource["meta"].pop("lastUpdated", None)
        context = SealContext(resource["resourceType"], resource["id"], str(version), recipient.address)
        sealed, key = seal(canonical_json(resource), context, recipient.address, recipient.encryption_key())
        return Envelope(sealed, key).to_binary("1970-01-01T00:00:00Z")

    def open_binary(self, binary: dict[str, Any]) -> dict[str, Any]:
        """Unseal a Binary from the vault into the plain resource, with the vault's version metadata."""
        try:
            envelope = Envelope.from_binary(binary)
        except EnvelopeError as exc:
            raise VaultClientError(502, binary, f"the vault returned a malformed sealed payload: {exc}") from exc
        if envelope.key.recipient != self.address:
            raise VaultClientError(502, None, "the vault returned a key wrapped for someone else")
        try:
            plaintext = unseal(envelope.sealed, envelope.key, self.keys.encryption)
        except DecryptionError as exc:
            raise VaultClientError(502, None, str(exc)) from exc
        try:
            resource = loads(plaintext)
        except ValueError as exc:
            raise VaultClientError(502, None, f"the unsealed resource is not usable JSON: {exc}") from exc
        if not isinstance(resource, dict):
            raise VaultClientError(502, None, "the unsealed resource is not a JSON object")
        c = envelope.context
        # The context is authenticated (AAD); the plaintext's own id/meta are overridden by it.
        resource["resourceType"], resource["id"] = c.resource_type, c.resource_id
        meta = binary.get("meta") or {}
        resource["meta"] = {**resource.get("meta", {}), "versionId": c.version_id}
        if isinstance(meta.get("lastUpdated"), str):
            resource["meta"]["lastUpdated"] = meta["lastUpdated"]
        return resource

    def _open_bundle(self, bundle: dict[str, Any]) -> dict[str, Any]:
        for entry in bundle.get("entry", []):
            if isinstance(entry.get("resource"), dict):
                entry["resource"] = self.open_binary(entry["resource"])
        return bundle

    # -- FHIR interactions on plaintext ---------------------------------------------------------
    def create(self, resource: dict[str, Any], *, patient: str | None = None) -> dict[str, Any]:
        """Create a resource (sealed here); returns it with its new id and version."""
        resource = dict(resource)
        if resource.get("resourceType") == "Patient" and self.keys.role is Role.PATIENT:
            resource["id"] = self.address
        else:
            resource["id"] = str(uuid.uuid4())
        binary = self.seal_resource(resource, 1, patient=patient)
        response = self._request("POST", f"/{resource['resourceType']}", json=binary)
        self._check(response)
        self._share_with_grantees([(resource, binary)])
        return self._after_write(resource, 1, response)

    def update(
        self, resource: dict[str, Any], *, if_match: str | None = None, patient: str | None = None
    ) -> dict[str, Any]:
        """Update (or create at a chosen id) a resource; the next version is sealed here."""
        resource_type, resource_id = resource.get("resourceType"), resource.get("id")
        if not isinstance(resource_type, str) or not isinstance(resource_id, str):
            raise VaultClientError(400, None, "update needs a resource with resourceType and id")
        current = _version_of(if_match) if if_match else self._current_version(resource_type, resource_id)
        binary = self.seal_resource(resource, current + 1, patient=patient)
        headers = {"If-Match": f'W/"{current}"'} if current else {}
        response = self._request("PUT", f"/{resource_type}/{resource_id}", json=binary, headers=headers)
        self._check(response)
        self._share_with_grantees([(resource, binary)])
        return self._after_write(resource, current + 1, response)

    def _current_version(self, resource_type: str, resource_id: str) -> int:
        """The current version (0 if none): from the history, which also counts deletions."""
        try:
            bundle = self.get_json(f"/{resource_type}/{resource_id}/_history", [("_count", "1")])
        except VaultClientError as exc:
            if exc.status == 404:
                return 0
            raise
        entries = bundle.get("entry", [])
        return _version_of(entries[0]["response"]["etag"]) if entries else 0

    def _after_write(self, resource: dict[str, Any], version: int, response: httpx.Response) -> dict[str, Any]:
        out = dict(resource)
        out["meta"] = {**resource.get("meta", {}), "versionId": str(version)}
        modified = response.headers.get("last-modified")
        if modified:
            from email.utils import parsedate_to_datetime

            out["meta"]["lastUpdated"] = parsedate_to_datetime(modified).strftime("%Y-%m-%dT%H:%M:%SZ")
        return out

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        return self.open_binary(self.get_json(f"/{resource_type}/{resource_id}"))

    def vread(self, resource_type: str, resource_id: str, version_id: str) -> dict[str, Any]:
        return self.open_binary(self.get_json(f"/{resource_type}/{resource_id}/_history/{version_id}"))

    def delete(self, resource_type: str, resource_id: str) -> None:
        self._check(self._request("DELETE", f"/{resource_type}/{resource_id}"))

    def search(self, resource_type: str, params: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        return self._open_bundle(self.get_json(f"/{resource_type}", params))

    def history(
        self, resource_type: str, resource_id: str | None = None, params: list[tuple[str, str]] | None = None
    ) -> dict[str, Any]:
        path = f"/{resource_type}/{resource_id}/_history" if resource_id else f"/{resource_type}/_history"
        return self._open_bundle(self.get_json(path, params))

    def follow(self, url: str) -> dict[str, Any]:
        """Fetch a paging link (next, previous, ...) from a vault Bundle, unsealed."""
        if not url.startswith(self.base_url + "/"):
            raise VaultClientError(400, None, "paging link does not point at this vault")
        return self._open_bundle(self.get_json(url[len(self.base_url) :]))

    def everything(self, resource_type: str, params: list[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
        """Every matching resource, following next links."""
        bundle = self.search(resource_type, params)
        found = [e["resource"] for e in bundle.get("entry", [])]
        while True:
            nxt = next((link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None)
            if nxt is None:
                return found
            bundle = self.follow(nxt)
            found.extend(e["resource"] for e in bundle.get("entry", []))

    def transaction(self, bundle: dict[str, Any], *, patient: str | None = None) -> dict[str, Any]:
        """Seal every entry of a transaction Bundle here and submit it all-or-nothing."""
        own = self.address if self.keys.role is Role.PATIENT else None

        def new_id(resource_type: str) -> str:
            return own if resource_type == "Patient" and own else str(uuid.uuid4())

        plan = plan_transaction(bundle, new_id, id_of_sealed=lambda b: str(Envelope.from_binary(b).context.resource_id))
        patients = {e.resource_id for e in plan if e.resource_type == "Patient" and e.method != "DELETE"}
        default = patient or (patients.pop() if len(patients) == 1 else own)
        sealed_entries: list[dict[str, Any]] = []
        for entry in sorted(plan, key=lambda e: e.index):
            if entry.method == "DELETE":
                request = {"method": "DELETE", "url": f"{entry.resource_type}/{entry.resource_id}"}
                sealed_entries.append({"request": request})
                continue
            assert entry.resource is not None
            version = 1 if entry.method == "POST" else self._current_version(entry.resource_type, entry.resource_id) + 1
            binary = self.seal_resource(entry.resource, version, patient=default)
            url = entry.resource_type if entry.method == "POST" else f"{entry.resource_type}/{entry.resource_id}"
            sealed_entries.append({"resource": binary, "request": {"method": entry.method, "url": url}})
        sealed_bundle = {"resourceType": "Bundle", "type": "transaction", "entry": sealed_entries}
        result = self._check(self._request("POST", "/", json=sealed_bundle))
        written = [
            (e.resource, b["resource"])
            for e, b in zip(sorted(plan, key=lambda e: e.index), sealed_entries, strict=True)
            if e.resource is not None
        ]
        self._share_with_grantees(written)
        return result

    # -- consent ----------------------------------------------------------------------------------
    def ledger_domain(self) -> Domain:
        if self._domain is None:
            d = self._check(self.http.get("/ledger/domain"))
            self._domain = Domain(d["name"], d["version"], int(d["chainId"]), d["verifyingContract"])
        return self._domain

    def grants(self) -> list[dict[str, Any]]:
        """The grants this actor gave (patient) or holds (grantee), as the vault enforces them."""
        return list(self.get_json("/consent/grants")["grants"])

    def grant(
        self,
        grantee: str,
        scope: list[str],
        *,
        expiry: datetime,
        purpose: str = "TREAT",
        catalogue: ScopeCatalogue | None = None,
    ) -> dict[str, Any]:
        """Grant ``grantee`` access to the resources in ``scope`` (catalogue keys) until ``expiry``.

        Signs the commitment (EIP-712), puts it on the ledger through the vault, then re-wraps the data keys of
        every resource the grant covers for the grantee. Returns the vault's grant record plus ``keysShared``.
        A scoring grant (``purpose="model:<id>"`` over the model's feature ``catalogue``) shares no keys.
        """
        if self.keys.role is not Role.PATIENT:
            raise VaultClientError(403, None, "only a patient grants access to their record")
        catalogue = catalogue or read_catalogue()
        try:
            grant = Grant.new(self.address, grantee, purpose, catalogue.mask(scope), expiry, catalogue)
        except (KeyError, GrantError) as exc:
            raise VaultClientError(400, None, str(exc)) from exc
        self.actor(grantee)  # the grantee must be registered, with a binding that verifies
        nonce = int(self.get_json(f"/ledger/nonce/{self.address}")["nonce"])
        message = GrantMessage(grant.grant_id, grant.commitment(), nonce, int(self._clock().timestamp()))
        signature = sign(self.keys, self.ledger_domain(), message)
        body = {"grant": grant.to_json(), "nonce": nonce, "issuedAt": message.issued_at, "signature": signature.hex()}
        record = self._check(self._request("POST", "/consent/grants", json=body))
        record["keysShared"] = self.share_under(record)
        record["opening"] = grant.to_json()  # the patient keeps it (and gives it to the grantee) for proofs
        return record

    def share_under(self, record: dict[str, Any]) -> int:
        """Re-wrap, for the grantee, the data key of every current resource the grant covers (idempotent).

        Only read grants open records; under a scoring grant nothing is shared (0).
        """
        catalogue = read_catalogue()
        if record["catalogue"] != catalogue.catalogue_id or record["purpose"] not in READ_PURPOSES:
            return 0
        scope = int(record["scope"], 16)
        grantee = self.actor(record["grantee"])
        types = sorted({e.resource_type for e in catalogue.granted(scope)})
        shares: list[dict[str, Any]] = []
        for resource_type in types:
            bundle = self.get_json(f"/{resource_type}", [("_count", "100")])
            while True:
                for entry in bundle.get("entry", []):
                    share = self._rewrap(entry["resource"], grantee, lambda r: catalogue.covers(scope, r))
                    if share is not None:
                        shares.append(share)
                nxt = next((link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None)
                if nxt is None:
                    break
                bundle = self.get_json(nxt[len(self.base_url) :])
        for start in range(0, len(shares), 500):
            path = f"/consent/grants/{record['grantId']}/keys"
            self._check(self._request("POST", path, json={"keys": shares[start : start + 500]}))
        return len(shares)

    def _rewrap(
        self, binary: dict[str, Any], grantee: ActorPublic, covers: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any] | None:
        """A key share for ``grantee`` of a sealed version this patient holds, if ``covers`` its plaintext."""
        return self._key_share(binary, grantee) if covers(self.open_binary(binary)) else None

    def _key_share(self, binary: dict[str, Any], grantee: ActorPublic) -> dict[str, Any]:
        envelope = Envelope.from_binary(binary)
        c = envelope.context
        dek = unwrap_key(envelope.key, c, self.keys.encryption)
        key = wrap_key(dek, c, grantee.address, grantee.encryption_key())
        return {
            "resourceType": c.resource_type,
            "id": c.resource_id,
            "versionId": int(c.version_id),
            "key": key.to_json(),
        }

    def _share_with_grantees(self, written: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        """After the patient writes, share each new version with every active grantee whose grant covers it."""
        if self.keys.role is not Role.PATIENT or not written:
            return
        catalogue = read_catalogue()
        now = self._clock()
        for record in self.grants():
            if record["patient"] != self.address or record["revokedAt"] is not None:
                continue
            if datetime.fromisoformat(record["expiry"]) <= now or record["catalogue"] != catalogue.catalogue_id:
                continue
            scope = int(record["scope"], 16)
            grantee = self.actor(record["grantee"])
            shares = [
                self._key_share(binary, grantee)
                for resource, binary in written
                if catalogue.covers(scope, resource) and Envelope.from_binary(binary).context.patient == self.address
            ]
            if shares:
                self._check(self._request("POST", f"/consent/grants/{record['grantId']}/keys", json={"keys": shares}))

    def revoke(self, grant_id: str) -> dict[str, Any]:
        """Sign and submit a revocation; the vault deletes the grantee's keys."""
        nonce = int(self.get_json(f"/ledger/nonce/{self.address}")["nonce"])
        message = RevokeMessage(bytes.fromhex(grant_id), nonce, int(self._clock().timestamp()))
        signature = sign(self.keys, self.ledger_domain(), message)
        body = {"nonce": nonce, "issuedAt": message.issued_at, "signature": signature.hex()}
        return self._check(self._request("POST", f"/consent/grants/{grant_id}/revoke", json=body))

    def access_log(self) -> list[dict[str, Any]]:
        """Who read what and when: the AuditEvents the vault sealed for this patient, newest first."""
        return self.everything("AuditEvent", [("_sort", "-_lastUpdated")])

    def erase(self, resource_type: str, resource_id: str) -> None:
        """Crypto-shred a resource from this patient's record."""
        self._check(self._request("POST", f"/{resource_type}/{resource_id}/$erase"))

    # -- named writers --------------------------------------------------------------------------
    def add_writer(self, address: str) -> None:
        self._check(self._request("PUT", f"/auth/writers/{normalize_address(address)}"))

    def remove_writer(self, address: str) -> None:
        self._check(self._request("DELETE", f"/auth/writers/{normalize_address(address)}"))

    def writers(self) -> list[str]:
        return list(self.get_json("/auth/writers")["writers"])


def _version_of(etag: str) -> int:
    value = etag.strip().removeprefix("W/").strip('"')
    if not re.fullmatch(r"[0-9]{1,9}", value):
        raise VaultClientError(400, None, f"not a version ETag: {etag[:20]!r}")
    return int(value)
