"""The gateway's guard against web pages: loopback Host names only, no foreign Origin, FHIR JSON bodies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ehr.errors import Forbidden, UnsupportedMediaType
from ehr.local_guard import is_loopback_host, refusal

HOST = "127.0.0.1:8081"
JSON = {"host": HOST, "content-type": "application/fhir+json"}


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8081", "127.0.0.1", "localhost:8081", "LOCALHOST", "127.9.8.7:1", "[::1]:8081", "[::1]"]
)
def test_loopback_names_are_loopback(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host",
    [
        "evil.example:8081",
        "evil.example",
        "localhost.evil.example:8081",
        "127.0.0.1.nip.io:8081",
        "10.0.0.1:8081",
        "0.0.0.0:8081",
        "[::2]:8081",
        "[::1",
        "",
        "::1",  # an IPv6 literal in a Host header has brackets; unbracketed it is no valid Host at all
    ],
)
def test_other_names_are_not(host: str) -> None:
    assert not is_loopback_host(host)


@given(st.from_regex(r"[a-z0-9.-]{1,40}\.(example|com|io|net)(:[0-9]{1,5})?", fullmatch=True))
def test_no_dns_name_but_localhost_is_loopback(host: str) -> None:
    assert not is_loopback_host(host)


def test_a_request_addressed_to_another_name_is_refused_as_dns_rebinding() -> None:
    refused = refusal("GET", "/Observation", {"host": "evil.example:8081"})
    assert isinstance(refused, Forbidden)
    assert "only requests addressed to 127.0.0.1 or localhost, not 'evil.example:8081'" in refused.message
    assert "DNS rebinding" in refused.message


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:3000", "https://127.0.0.1:8081"])
def test_a_browser_request_from_another_origin_is_refused(origin: str) -> None:
    for method in ("GET", "POST", "PUT", "DELETE"):
        refused = refusal(method, "/Observation", {**JSON, "origin": origin})
        assert isinstance(refused, Forbidden)
        assert f"a web page at {origin!r} may not use this gateway" in refused.message


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""]
)
def test_writes_must_be_fhir_json(content_type: str) -> None:
    for method, path in (("POST", "/Observation"), ("PUT", "/Observation/a"), ("POST", "/")):
        refused = refusal(method, path, {"host": HOST, "content-type": content_type})
        assert isinstance(refused, UnsupportedMediaType)
        assert refused.status == 415
        assert "send FHIR JSON (Content-Type: application/fhir+json)" in refused.message


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/Observation", {"host": HOST}),
        ("GET", "/metadata", {"host": "localhost:8081"}),
        ("POST", "/Observation", JSON),
        ("POST", "/Observation", {"host": HOST, "content-type": "application/json; charset=utf-8"}),
        ("PUT", "/Patient/a", {**JSON, "origin": "http://127.0.0.1:8081"}),  # a page the gateway itself served
        ("DELETE", "/Observation/a", {"host": HOST}),
        ("POST", "/Observation/_search", {"host": HOST, "content-type": "application/x-www-form-urlencoded"}),
    ],
)
def test_what_fhir_clients_send_is_served(method: str, path: str, headers: dict[str, str]) -> None:
    assert refusal(method, path, headers) is None


def test_a_refused_header_is_quoted_only_in_part() -> None:
    refused = refusal("GET", "/", {"host": "x" * 5000 + ".example"})
    assert refused is not None
    assert len(refused.message) < 400
