"""The pchr command line, driven as a user would: keys, serve+upload+read, and the narrated demo."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ehr._serve import listen, serve_in_thread
from ehr.api import create_app
from ehr.cli import main
from ehr.demo import run_demo, synthetic_record
from ehr.settings import Settings
from tests.interop.pchr_circuits import bounded_preimage
from zk.consent_circuit import consent_r1cs
from zk.groth16 import setup
from zk.r1csfile import r1cs_from_bytes
from zk.zkey import zkey_to_bytes

PASS = {"PCHR_PASSPHRASE": "a long test passphrase"}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env=PASS)


def test_keys_new_and_show(runner: CliRunner, tmp_path: Path) -> None:
    keyfile = tmp_path / "alice.key"
    result = runner.invoke(main, ["keys", "new", "--role", "patient", "--out", str(keyfile)])
    assert result.exit_code == 0, result.output
    address = result.output.split()[1]
    assert address.startswith("0x")
    assert keyfile.stat().st_mode & 0o777 == 0o600
    shown = runner.invoke(main, ["keys", "show", str(keyfile)])
    assert address in shown.output
    # Never overwrite a keyfile.
    again = runner.invoke(main, ["keys", "new", "--role", "patient", "--out", str(keyfile)])
    assert again.exit_code != 0
    assert "refusing to overwrite" in again.output


def test_wrong_passphrase_is_a_clear_error(runner: CliRunner, tmp_path: Path) -> None:
    keyfile = tmp_path / "alice.key"
    runner.invoke(main, ["keys", "new", "--role", "patient", "--out", str(keyfile)])
    result = CliRunner(env={"PCHR_PASSPHRASE": "wrong"}).invoke(
        main, ["keys", "register", "--vault", "http://127.0.0.1:9", "--keyfile", str(keyfile)]
    )
    assert result.exit_code != 0
    assert "wrong passphrase" in result.output


def test_upload_and_read_against_a_live_vault(runner: CliRunner, tmp_path: Path) -> None:
    alice, clinic = tmp_path / "alice.key", tmp_path / "clinic.key"
    runner.invoke(main, ["keys", "new", "--role", "patient", "--out", str(alice)])
    runner.invoke(main, ["keys", "new", "--role", "clinician", "--out", str(clinic)])
    bundle_file = tmp_path / "record.json"
    bundle = synthetic_record(seed=3)
    bundle_file.write_text(json.dumps(bundle))
    n_obs = sum(1 for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")

    listener = listen()
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/vault.db", public_url=listener.url))
    with serve_in_thread(app, listener=listener) as url:
        for key in (alice, clinic):
            result = runner.invoke(main, ["keys", "register", "--vault", url, "--keyfile", str(key)])
            assert result.exit_code == 0, result.output
        result = runner.invoke(main, ["upload", str(bundle_file), "--vault", url, "--keyfile", str(alice)])
        assert result.exit_code == 0, result.output
        assert f"{n_obs} Observation" in result.output

        listing = runner.invoke(main, ["read", "Observation", "--vault", url, "--keyfile", str(alice)])
        assert listing.exit_code == 0, listing.output
        assert f"{n_obs} Observation resource(s)" in listing.output
        first_id = listing.output.splitlines()[1].split()[0]
        one = runner.invoke(
            main, ["read", f"Observation/{first_id}", "--json", "--vault", url, "--keyfile", str(alice)]
        )
        assert json.loads(one.output)["id"] == first_id

        refused = runner.invoke(main, ["read", f"Observation/{first_id}", "--vault", url, "--keyfile", str(clinic)])
        assert refused.exit_code != 0
        assert "403" in refused.output

        # A writer uploading without saying whose record it is gets told what to do.
        orphan = runner.invoke(main, ["upload", str(bundle_file), "--vault", url, "--keyfile", str(clinic)])
        assert orphan.exit_code != 0
        assert "--patient" in orphan.output


def test_demo_narrates_the_flow_and_succeeds(tmp_path: Path) -> None:
    lines: list[str] = []
    status = run_demo(tmp_path / "demo", echo=lines.append)
    text = "\n".join(lines)
    assert status == 0, text
    assert "0 found" in text  # no plaintext in the database
    assert "refused" in text
    assert "403 OperationOutcome" in text
    assert "Done:" in text
    assert "diabetes risk, decrypted by the clinician" in text
    assert "the clinician tries again: refused (403 no proof of consent is possible" in text
    assert "a proof made before the revocation, sent after it: refused (403 the proof of consent is refused" in text
    assert "stale grant root: the root is from before a revocation" in text
    assert "1 attestation(s) verified from public data; attestations audit clean" in text


def test_consent_grant_model_and_score(runner: CliRunner, tmp_path: Path) -> None:
    alice, clinic = tmp_path / "alice.key", tmp_path / "clinic.key"
    address = runner.invoke(main, ["keys", "new", "--role", "patient", "--out", str(alice)]).output.split()[1]
    doctor = runner.invoke(main, ["keys", "new", "--role", "clinician", "--out", str(clinic)]).output.split()[1]
    bundle_file = tmp_path / "record.json"
    bundle_file.write_text(json.dumps(synthetic_record(seed=5)))

    listener = listen()
    settings = Settings(database_url=f"sqlite:///{tmp_path}/vault.db", models=("diabetes",), public_url=listener.url)
    app = create_app(settings)
    with serve_in_thread(app, listener=listener) as url:
        where = ["--vault", url]
        for key in (alice, clinic):
            assert runner.invoke(main, ["keys", "register", *where, "--keyfile", str(key)]).exit_code == 0
        assert runner.invoke(main, ["upload", str(bundle_file), *where, "--keyfile", str(alice)]).exit_code == 0
        as_alice = [*where, "--keyfile", str(alice)]
        read = runner.invoke(main, ["consent", "grant", doctor, "--scope", "patient,observation", *as_alice])
        assert read.exit_code == 0, read.output
        scoring = runner.invoke(
            main, ["consent", "grant", doctor, "--model", "diabetes", "--scope", "diastolic-bp,bmi,age", *as_alice]
        )
        assert scoring.exit_code == 0, scoring.output
        assert "scoring with diabetes" in scoring.output
        assert "0 data key(s)" in scoring.output
        grant_id = scoring.output.split("grant id")[1].split()[0]
        listing = runner.invoke(main, ["consent", "list", *as_alice])
        assert "diastolic-bp,bmi,age" in listing.output

        as_doctor = [*where, "--keyfile", str(clinic)]
        scored = runner.invoke(main, ["score", "--model", "diabetes", "--patient", address, *as_doctor])
        assert scored.exit_code == 0, scored.output
        assert f"diabetes risk for {address}:" in scored.output
        # The synthetic record has blood pressure, BMI and a birth date; the grant allows exactly those.
        assert "features used:    diastolic-bp, bmi, age" in scored.output
        assert "glucose-2h-ogtt" in scored.output.split("features missing:")[1]

        assert runner.invoke(main, ["consent", "revoke", grant_id, *as_alice]).exit_code == 0
        refused = runner.invoke(
            main, ["score", "--model", "diabetes", "--patient", address, "--grant", grant_id, *as_doctor]
        )
        assert refused.exit_code != 0
        assert "403 no proof of consent is possible" in refused.output


def test_zk_export_r1cs_writes_the_consent_circuit_for_a_ceremony(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "consent.r1cs"
    result = runner.invoke(main, ["zk", "export-r1cs", str(out)])
    assert result.exit_code == 0, result.output
    written, ours = r1cs_from_bytes(out.read_bytes()), consent_r1cs()
    # The file format has no room for our gadget labels; the wires and every constraint are the circuit's.
    assert (written.num_variables, written.num_public, written.constraints) == (
        ours.num_variables,
        ours.num_public,
        ours.constraints,
    )
    assert "pchr-consent-v2, 3,890 constraints" in result.output
    assert "powers-of-tau file of power 12 or more" in result.output  # 3,890 + 7 + 1 rows: a 2^12 domain


def test_zk_check_key_accepts_a_key_for_the_circuit_and_names_what_is_wrong_with_others(
    runner: CliRunner, tmp_path: Path
) -> None:
    good, other, garbage = tmp_path / "good.zkey", tmp_path / "other.zkey", tmp_path / "garbage.zkey"
    good.write_bytes(zkey_to_bytes(setup(consent_r1cs())))
    other.write_bytes(zkey_to_bytes(setup(bounded_preimage(1, 2, 3).r1cs())))
    garbage.write_bytes(b"\x00" * 64)
    result = runner.invoke(main, ["zk", "check-key", str(good)])
    assert result.exit_code == 0, result.output
    assert "a Groth16 key for pchr-consent-v2 (domain 4,096)" in result.output
    refused = runner.invoke(main, ["zk", "check-key", str(other)])
    assert refused.exit_code == 1
    assert "other.zkey is not a key for pchr-consent-v2: the key is for" in refused.output
    unreadable = runner.invoke(main, ["zk", "check-key", str(garbage)])
    assert unreadable.exit_code == 1
    assert "garbage.zkey is not a key for pchr-consent-v2" in unreadable.output
    assert "Traceback" not in unreadable.output


def _serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str, public_url: str | None = None) -> Any:
    """``pchr serve ARGS`` up to the point it would start uvicorn; returns the click result and what it ran."""
    started: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: started.update(kwargs, env=dict(os.environ)))
    # Every variable serve sets is listed, so that CliRunner puts each back afterwards.
    env = {
        "PCHR_DATABASE_URL": f"sqlite:///{tmp_path}/v.db",
        "PCHR_TOKEN_KEY": str(tmp_path / "token.key"),
        "PCHR_MODELS": "",
        "PCHR_LEDGER": "sql",
        "PCHR_PUBLIC_URL": public_url,
        "PCHR_ZK_KEY": None,
    }
    result = CliRunner(env=env).invoke(main, ["serve", *args])
    return result, started


def test_serve_on_loopback_answers_at_its_own_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, started = _serve(tmp_path, monkeypatch, "--port", "8123")
    assert result.exit_code == 0, result.output
    assert started["host"] == "127.0.0.1"
    assert started["env"]["PCHR_PUBLIC_URL"] == "http://127.0.0.1:8123"
    assert "for clients at http://127.0.0.1:8123" in result.output


@pytest.mark.parametrize(
    ("host", "public_url"),
    [("localhost", "http://localhost:8123"), ("::1", "http://[::1]:8123"), ("127.0.0.2", "http://127.0.0.2:8123")],
)
def test_serve_on_any_loopback_address_defaults_its_public_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str, public_url: str
) -> None:
    result, started = _serve(tmp_path, monkeypatch, "--host", host, "--port", "8123")
    assert result.exit_code == 0, result.output
    assert started["env"]["PCHR_PUBLIC_URL"] == public_url


@pytest.mark.parametrize("host", ["10.0.0.1", "::", "vault.example.org"])
def test_serve_on_another_address_without_a_public_url_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    result, started = _serve(tmp_path, monkeypatch, "--host", host, "--port", "8123")
    assert result.exit_code != 0
    assert f"--host {host} listens beyond this machine" in result.output
    assert not started


ALL_INTERFACES = "0.0.0.0"  # noqa: S104 (nothing binds it here: uvicorn.run is replaced)


def test_serve_beyond_loopback_needs_a_public_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, started = _serve(tmp_path, monkeypatch, "--host", ALL_INTERFACES, "--port", "8123")
    assert result.exit_code != 0
    assert "--host 0.0.0.0 listens beyond this machine: set --public-url (or PCHR_PUBLIC_URL)" in result.output
    assert not started
    assert not (tmp_path / "token.key").exists()  # refused before anything was made

    given, started = _serve(tmp_path, monkeypatch, "--host", ALL_INTERFACES, public_url="https://vault.example.org/")
    assert given.exit_code == 0, given.output
    assert started["env"]["PCHR_PUBLIC_URL"] == "https://vault.example.org"


def test_serve_refuses_a_malformed_public_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, started = _serve(tmp_path, monkeypatch, "--public-url", "vault.example.org")
    assert result.exit_code != 0
    assert "--public-url / PCHR_PUBLIC_URL: the public URL 'vault.example.org' must be http://" in result.output
    assert not started
