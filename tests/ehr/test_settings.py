"""Vault settings: the public URL, which the token endpoint's audience and every link are built on."""

from __future__ import annotations

import pytest

from ehr.settings import Settings, public_urls


@pytest.mark.parametrize(
    ("given", "answers_to"),
    [
        ("http://127.0.0.1:8080", ("http://127.0.0.1:8080", "http://localhost:8080")),
        ("http://localhost:8080/", ("http://localhost:8080", "http://127.0.0.1:8080")),
        ("http://127.0.0.1", ("http://127.0.0.1", "http://localhost")),
        ("https://vault.example.org/pchr/", ("https://vault.example.org/pchr",)),
        ("http://[::1]:8080", ("http://[::1]:8080",)),
        ("http://127.0.0.2:8080", ("http://127.0.0.2:8080",)),
    ],
)
def test_a_public_url_answers_to_itself_and_loopback_to_both_spellings(given: str, answers_to: tuple[str, ...]) -> None:
    assert public_urls(given) == answers_to
    settings = Settings(public_url=given)
    assert settings.public_url == answers_to[0]
    assert settings.public_urls == answers_to


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("vault.example.org", "must be http:// or https://"),
        ("ftp://vault.example.org", "must be http:// or https://"),
        ("https://", "must be http:// or https://"),
        ("https://vault.example.org:http", "is not a URL"),
        ("https://vault.example.org/?x=1", "no user, query or fragment"),
        ("https://user@vault.example.org", "no user, query or fragment"),
    ],
)
def test_a_malformed_public_url_is_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(public_url=url)


def test_the_public_url_comes_from_the_environment_or_is_unset() -> None:
    assert (
        Settings.from_env({"PCHR_PUBLIC_URL": "https://vault.example.org/"}).public_url == "https://vault.example.org"
    )
    unset = Settings.from_env({})
    assert unset.public_url is None
    assert unset.public_urls == ()
