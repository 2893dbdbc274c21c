"""The ``pchr`` command line: keys, the vault server, the local gateway, uploads, reads and the demo.

Passphrases come from ``PCHR_PASSPHRASE`` or a prompt, never from an argument (it would land in shell history).
Output is for a person; ``--json`` where a machine may want it.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ehr.client import VaultClient, VaultClientError
from ehr.errors import InvalidRequest, KeyfileError
from ehr.identity import ActorKeys, Role
from ehr.keyfile import dump_keyfile, load_keyfile, read_public_header
from ehr.settings import DEFAULT_MODELS
from ehr.summary import summarize

__all__ = ["main"]


def _passphrase(confirm: bool = False) -> str:
    from_env = os.environ.get("PCHR_PASSPHRASE")
    if from_env:
        return from_env
    value: str = click.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm)
    return value


def _open_keys(keyfile: Path) -> ActorKeys:
    try:
        return load_keyfile(keyfile.read_bytes(), _passphrase())
    except (OSError, KeyfileError) as exc:
        raise click.ClickException(f"cannot open {keyfile}: {exc}") from exc


def _client(vault: str, keyfile: Path) -> VaultClient:
    client = VaultClient.connect(vault, _open_keys(keyfile))
    click.get_current_context().call_on_close(client.close)
    return client


_vault_option = click.option(
    "--vault",
    default=lambda: os.environ.get("PCHR_VAULT", "http://127.0.0.1:8080"),
    show_default="$PCHR_VAULT or http://127.0.0.1:8080",
    help="The vault's base URL.",
)
_keyfile_option = click.option(
    "--keyfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=lambda: os.environ.get("PCHR_KEYFILE"),
    required=True,
    help="Your keyfile (or $PCHR_KEYFILE).",
)


@click.group()
@click.version_option("0.1.0", prog_name="pchr")
def main() -> None:
    """pchr: a patient-controlled health record with encrypted storage."""


# -- keys ------------------------------------------------------------------------------------------
@main.group()
def keys() -> None:
    """Create and inspect actor keyfiles."""


@keys.command("new")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Keyfile to write.")
def keys_new(role: str, out: Path) -> None:
    """Generate a secp256k1 identity key and an X25519 encryption key, sealed under a passphrase."""
    if out.exists():
        raise click.ClickException(f"{out} exists; refusing to overwrite a keyfile")
    actor = ActorKeys.generate(Role(role))
    data = dump_keyfile(actor, _passphrase(confirm=True))
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    click.echo(f"{role} {actor.address}")
    click.echo(f"keyfile written to {out} (scrypt + AES-256-GCM); keep it and its passphrase safe")


@keys.command("show")
@click.argument("keyfile", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def keys_show(keyfile: Path) -> None:
    """Show a keyfile's public part (no passphrase needed)."""
    try:
        header = read_public_header(keyfile.read_bytes())
    except KeyfileError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"role:    {header['role']}\naddress: {header['address']}\nx25519:  {header['x25519Public']}")


@keys.command("register")
@_vault_option
@_keyfile_option
def keys_register(vault: str, keyfile: Path) -> None:
    """Register your public keys with a vault (the server never sees a private key)."""
    client = _client(vault, keyfile)
    _call(client.register)
    click.echo(f"registered {client.keys.role} {client.address} with {vault}")


# -- servers ---------------------------------------------------------------------------------------
@main.command()
@click.option(
    "--database-url",
    default=lambda: os.environ.get("PCHR_DATABASE_URL", "sqlite:///pchr.db"),
    show_default="$PCHR_DATABASE_URL or sqlite:///pchr.db",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True)
@click.option("--workers", default=1, show_default=True, help="Server processes (2 uses both cores here).")
@click.option(
    "--token-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=lambda: os.environ.get("PCHR_TOKEN_KEY", "pchr-token.key"),
    show_default="$PCHR_TOKEN_KEY or pchr-token.key",
    help="File holding the Ed25519 key that signs access tokens (created if missing; shared by all workers).",
)
@click.option(
    "--public-url",
    default=lambda: os.environ.get("PCHR_PUBLIC_URL") or None,
    show_default="$PCHR_PUBLIC_URL, or http://HOST:PORT for a loopback --host",
    help="The base URL clients use (the token audience and the base of links); required with a --host other "
    "than loopback, e.g. https://vault.example.org behind a TLS proxy.",
)
@click.option(
    "--models",
    default=lambda: os.environ.get("PCHR_MODELS", ",".join(DEFAULT_MODELS)),
    show_default="$PCHR_MODELS or " + ",".join(DEFAULT_MODELS),
    help="Risk models to score with (comma-separated recipe names; empty for none).",
)
@click.option(
    "--zk-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=lambda: os.environ.get("PCHR_ZK_KEY", "pchr-consent.zkey"),
    show_default="$PCHR_ZK_KEY or pchr-consent.zkey",
    help="The consent circuit's Groth16 key (.zkey, e.g. from a ceremony); a labelled development setup is "
    "written there if missing, once, before the workers start.",
)
@click.option(
    "--ledger",
    default=lambda: os.environ.get("PCHR_LEDGER", "sql"),
    show_default="$PCHR_LEDGER or sql",
    help="The consent ledger: sql (tables in the database), evm+http://HOST:PORT (a contract on an EVM node: "
    "$PCHR_LEDGER_OPERATOR_KEY, and $PCHR_LEDGER_CONTRACT or one deployed now) or evm+tester (an in-process chain).",
)
def serve(
    database_url: str,
    host: str,
    port: int,
    workers: int,
    token_key: Path,
    public_url: str | None,
    models: str,
    zk_key: Path,
    ledger: str,
) -> None:
    """Run the vault API (and the model service for encrypted risk scores)."""
    import uvicorn

    from ehr.api.app import load_or_create_token_key

    public_url = _serve_public_url(host, port, public_url)  # first: a refusal must leave nothing behind

    load_or_create_token_key(token_key)  # created here, once, before any worker starts
    os.environ["PCHR_DATABASE_URL"] = database_url
    os.environ["PCHR_TOKEN_KEY"] = str(token_key.resolve())
    os.environ["PCHR_MODELS"] = models
    _prepare_ledger(ledger, workers)
    os.environ["PCHR_PUBLIC_URL"] = public_url
    names = [m.strip() for m in models.split(",") if m.strip()]
    if names:
        from models.registry import Registry

        registry = Registry()
        for name in names:  # trained here, once (deterministic, cached), before any worker loads them
            click.echo(f"model {name}: {registry.ensure(name).model_id}")
        from ehr.zk_keys import load_or_create_consent_keys

        consent = load_or_create_consent_keys(zk_key)  # likewise: every worker must prove and verify with one key
        os.environ["PCHR_ZK_KEY"] = str(zk_key.resolve())
        click.echo(f"consent circuit key {zk_key} ({'DEVELOPMENT setup' if consent.development else 'ceremony'})")
    click.echo(
        f"pchr vault on http://{_url_host(host)}:{port} for clients at {public_url} ({workers} worker(s), "
        f"database {_redact(database_url)})"
    )
    uvicorn.run(
        "ehr.api.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


@main.command()
@_vault_option
@_keyfile_option
@click.option("--port", default=8081, show_default=True)
def gateway(vault: str, keyfile: Path, port: int) -> None:
    """Run a plain FHIR endpoint on localhost that seals and unseals with your keys."""
    import uvicorn

    from ehr.gateway import create_gateway

    client = _client(vault, keyfile)
    _call(client.access_token)
    click.echo(f"pchr gateway for {client.address}: http://127.0.0.1:{port} -> {vault}")
    uvicorn.run(create_gateway(client), host="127.0.0.1", port=port, log_level="warning")


# -- records ---------------------------------------------------------------------------------------
@main.command()
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_vault_option
@_keyfile_option
@click.option("--patient", default=None, help="The patient's address, when a writer uploads for them.")
def upload(bundle: Path, vault: str, keyfile: Path, patient: str | None) -> None:
    """Seal a FHIR transaction Bundle on this machine and store it in the vault, all or nothing."""
    from ehr.transaction import assign_patient

    client = _client(vault, keyfile)
    try:
        data = json.loads(bundle.read_text())
        owner = patient or (client.address if client.keys.role is Role.PATIENT else None)
        if owner is None:
            raise click.ClickException("a writer must say whose record this is: --patient 0x...")
        data = assign_patient(data, owner)
    except (ValueError, InvalidRequest) as exc:
        raise click.ClickException(f"{bundle}: {exc}") from exc
    result = _call(lambda: client.transaction(data, patient=owner))
    counts = Counter(
        e["response"]["location"].split("/")[0] for e in result.get("entry", []) if "location" in e.get("response", {})
    )
    click.echo(f"uploaded {sum(counts.values())} resources for {owner}, sealed before they left this machine:")
    for resource_type, n in counts.most_common():
        click.echo(f"  {n:4d} {resource_type}")


@main.command()
@click.argument("target")
@_vault_option
@_keyfile_option
@click.option("--patient", default=None, help="Whose records to list (default: yours).")
@click.option("--json", "as_json", is_flag=True, help="Print FHIR JSON.")
def read(target: str, vault: str, keyfile: Path, patient: str | None, as_json: bool) -> None:
    """Read and decrypt TYPE/ID, TYPE/ID/_history/V, or list every TYPE resource."""
    client = _client(vault, keyfile)
    parts = target.strip("/").split("/")
    if len(parts) == 1:
        params = [("patient", patient)] if patient else []
        resources = _call(lambda: client.everything(parts[0], params))
        if as_json:
            click.echo(json.dumps(resources, indent=2))
            return
        click.echo(f"{len(resources)} {parts[0]} resource(s)")
        for resource in resources:
            click.echo(f"  {resource['id']}  {summarize(resource)}")
        return
    if len(parts) == 2:
        resource = _call(lambda: client.read(parts[0], parts[1]))
    elif len(parts) == 4 and parts[2] == "_history":
        resource = _call(lambda: client.vread(parts[0], parts[1], parts[3]))
    else:
        raise click.ClickException("target must be TYPE, TYPE/ID or TYPE/ID/_history/VERSION")
    click.echo(json.dumps(resource, indent=2) if as_json else f"{target}: {summarize(resource)}")


@main.group()
def consent() -> None:
    """Grant, revoke and list access to your record (signed by you, kept on the consent ledger)."""


@consent.command("grant")
@click.argument("grantee")
@click.option("--scope", default=None, help="Comma-separated catalogue keys, e.g. laboratory,conditions.")
@click.option("--days", default=30, show_default=True, help="How long the grant lasts.")
@click.option("--purpose", default="TREAT", show_default=True, help="HL7 PurposeOfUse code (read grants).")
@click.option(
    "--model",
    default=None,
    help="Grant scoring with this risk model (name or id) instead of reading; --scope then lists its features "
    "(all of them if left out).",
)
@_vault_option
@_keyfile_option
def consent_grant(
    grantee: str, scope: str | None, days: int, purpose: str, model: str | None, vault: str, keyfile: Path
) -> None:
    """Let GRANTEE (an address) read the resources in --scope, or score with --model, for --days."""
    from datetime import UTC, datetime, timedelta

    client = _client(vault, keyfile)
    expiry = datetime.now(UTC) + timedelta(days=days)
    keys = [k.strip() for k in (scope or "").split(",") if k.strip()]
    if model is not None:
        from ehr.scoring import grant_scoring

        described = _call(lambda: client.get_json(f"/models/{model}"))
        record = _call(lambda: grant_scoring(client, grantee, described, expiry=expiry, features=keys or None))
        what = f"scoring with {described['name']} ({described['id'][:12]}…) over " + (
            ", ".join(keys) if keys else "all its features"
        )
        purpose = record["purpose"]
    else:
        if not keys:
            raise click.ClickException("a read grant needs --scope (catalogue keys); or give --model")
        record = _call(lambda: client.grant(grantee, keys, expiry=expiry, purpose=purpose))
        what = ", ".join(keys)
    click.echo(f"granted {grantee} {what} until {record['expiry'][:10]} ({purpose[:20]})")
    click.echo(f"  grant id     {record['grantId']}")
    click.echo(f"  ledger entry {record['entryIndex']}, grant-tree leaf {record['leafIndex']}")
    click.echo(f"  {record['keysShared']} data key(s) re-wrapped for the grantee")


@consent.command("revoke")
@click.argument("grant_id")
@_vault_option
@_keyfile_option
def consent_revoke(grant_id: str, vault: str, keyfile: Path) -> None:
    """Revoke a grant: the grantee's keys are deleted and further requests refused."""
    client = _client(vault, keyfile)
    result = _call(lambda: client.revoke(grant_id))
    click.echo(f"revoked {grant_id} (ledger entry {result['entryIndex']}); {result['keysDeleted']} key(s) deleted")
    click.echo("  what the grantee already downloaded cannot be recalled")


@consent.command("list")
@_vault_option
@_keyfile_option
def consent_list(vault: str, keyfile: Path) -> None:
    """Grants you gave, or hold."""
    from consent_chain.catalogue import ScopeCatalogue, read_catalogue

    client = _client(vault, keyfile)
    catalogues = {read_catalogue().catalogue_id: read_catalogue()}
    for g in _call(client.grants):
        if g["catalogue"] not in catalogues and g["purpose"].startswith("model:"):
            described = _call(lambda g=g: client.get_json(f"/models/{g['purpose'].removeprefix('model:')}"))
            catalogues[g["catalogue"]] = ScopeCatalogue.from_json(described["catalogue"])
        catalogue = catalogues.get(g["catalogue"])
        scope = int(g["scope"], 16)
        keys = ",".join(e.key for e in catalogue.granted(scope)) if catalogue else f"scope {scope:#x}"
        state = "revoked" if g["revokedAt"] else f"until {g['expiry'][:10]}"
        click.echo(f"{g['grantId'][:16]}…  {g['patient']} -> {g['grantee']}  {keys}  {g['purpose']}  {state}")


@main.command()
@click.option("--model", "model_ref", required=True, help="Risk model name (diabetes, breast) or id.")
@click.option("--patient", required=True, help="The patient's address.")
@click.option("--grant", "grant_id", default=None, help="Scoring grant id (default: your newest for the model).")
@_vault_option
@_keyfile_option
def score(model_ref: str, patient: str, grant_id: str | None, vault: str, keyfile: Path) -> None:
    """An encrypted risk score: features encrypted on your side, the model evaluated on ciphertext."""
    from ehr.scoring import ScoringClient
    from models.errors import ModelError

    client = _client(vault, keyfile)
    scorer = ScoringClient(client)
    click.echo("making a CKKS key and registering its evaluation keys with the model service (once per session)")
    try:
        result = _call(lambda: scorer.score(model_ref, patient, grant_id=grant_id))
    except ModelError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{result.model_name} risk for {patient}: {result.probability:.3f} (margin {result.margin:+.4f})")
    click.echo(f"  model {result.model_id}, scoring grant {result.grant_id[:16]}…")
    click.echo(f"  features used:    {', '.join(result.used) or 'none'}")
    click.echo(f"  features missing: {', '.join(result.missing) or 'none'} (absent, unreadable or outside the grant)")
    click.echo(
        f"  encrypted query {result.upload_bytes / 1e6:.2f} MB; encrypt {result.seconds['encrypt']:.2f} s, "
        f"service round trip {result.seconds['round trip']:.2f} s, decrypt {result.seconds['decrypt']:.3f} s"
    )


@main.command("access-log")
@_vault_option
@_keyfile_option
def access_log(vault: str, keyfile: Path) -> None:
    """Who read what in your record, and when (AuditEvents sealed for you)."""
    client = _client(vault, keyfile)
    events = _call(client.access_log)
    click.echo(f"{len(events)} access(es)")
    for e in events:
        who = e["agent"][0]["who"]["identifier"]["value"]
        what = [x["what"]["reference"] for x in e.get("entity", [])[1:]]
        kind = e["subtype"][0]["code"]
        click.echo(f"  {e['recorded'][:19]}  {who}  {kind}  {len(what)} resource(s): {', '.join(what[:3])}")


@main.command()
@click.argument("target")
@_vault_option
@_keyfile_option
def erase(target: str, vault: str, keyfile: Path) -> None:
    """Crypto-shred TYPE/ID from your record: every version's keys and ciphertext are destroyed."""
    parts = target.strip("/").split("/")
    if len(parts) != 2:
        raise click.ClickException("target must be TYPE/ID")
    client = _client(vault, keyfile)
    _call(lambda: client.erase(parts[0], parts[1]))
    click.echo(f"{target} erased: no key that opens it exists any more")


@main.group()
def audit() -> None:
    """Verify the consent ledger from public data."""


def _audit_options(command: Callable[..., None]) -> Callable[..., None]:
    """``--vault``, ``--state`` and ``--key``, which every audit command takes."""
    command = click.option(
        "--key", "vkey", default=None, help="The operator's verifier key to pin (default: trust on first use)."
    )(command)
    command = click.option(
        "--state",
        type=click.Path(dir_okay=False, path_type=Path),
        default=Path("pchr-audit.json"),
        show_default=True,
        help="Where the last verified checkpoint and the pinned keys are kept.",
    )(command)
    return _vault_option(command)


@audit.command("ledger")
@_audit_options
def audit_ledger_cmd(vault: str, state: Path, vkey: str | None) -> None:
    """Check checkpoint signatures, consistency with the last checkpoint seen, and every entry's inclusion."""
    from ehr.ledger_audit import run_ledger_audit

    sys.exit(run_ledger_audit(vault, state, vkey, echo=click.echo))


@audit.command("attestations")
@_audit_options
def audit_attestations_cmd(vault: str, state: Path, vkey: str | None) -> None:
    """The ledger audit, then every ATTEST entry: its proof, and its grant root at the time it was made."""
    from ehr.ledger_audit import run_attestation_audit

    sys.exit(run_attestation_audit(vault, state, vkey, echo=click.echo))


@main.group()
def zk() -> None:
    """The consent circuit's Groth16 key: the circuit for a ceremony, and a check of the key it makes."""


@zk.command("export-r1cs")
@click.argument("out", type=click.Path(dir_okay=False, writable=True, path_type=Path))
def zk_export_r1cs(out: Path) -> None:
    """Write the consent circuit as an iden3 .r1cs file (circom's format) for a phase-2 ceremony."""
    from ehr.zk_keys import CIRCUIT_ID
    from zk.consent_circuit import consent_r1cs
    from zk.r1csfile import r1cs_to_bytes

    r1cs = consent_r1cs()
    rows = r1cs.num_constraints + r1cs.num_public + 1
    power = (rows - 1).bit_length()
    out.write_bytes(r1cs_to_bytes(r1cs))
    click.echo(
        f"{out}: {CIRCUIT_ID}, {r1cs.num_constraints:,} constraints, {r1cs.num_variables:,} wires, "
        f"{r1cs.num_public} public inputs; its setup needs a powers-of-tau file of power {power} or more.\n"
        f"Phase 2 with snarkjs: groth16 setup {out.name} pot{power}_final.ptau consent_0000.zkey, then one "
        "'zkey contribute' per participant and a 'zkey beacon'; check the result with 'pchr zk check-key' and "
        "serve it with PCHR_ZK_KEY."
    )


@zk.command("check-key")
@click.argument("zkey", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def zk_check_key(zkey: Path) -> None:
    """Check that a .zkey (a ceremony's) is a Groth16 key for this pchr's consent circuit."""
    from ehr.zk_keys import CIRCUIT_ID
    from zk.consent_circuit import consent_r1cs
    from zk.errors import ZkError
    from zk.zkey import check_key_matches, zkey_from_bytes

    try:
        pk = zkey_from_bytes(zkey.read_bytes())
        check_key_matches(pk, consent_r1cs())
    except ZkError as exc:
        raise click.ClickException(f"{zkey} is not a key for {CIRCUIT_ID}: {exc}") from exc
    click.echo(f"{zkey}: a Groth16 key for {CIRCUIT_ID} (domain {pk.domain_size:,}); serve it with PCHR_ZK_KEY")


@main.group()
def writers() -> None:
    """Name who may add records to your record (a clinic, a lab)."""


@writers.command("add")
@click.argument("address")
@_vault_option
@_keyfile_option
def writers_add(address: str, vault: str, keyfile: Path) -> None:
    client = _client(vault, keyfile)
    _call(lambda: client.add_writer(address))
    click.echo(f"{address} may now add records to your record")


@writers.command("remove")
@click.argument("address")
@_vault_option
@_keyfile_option
def writers_remove(address: str, vault: str, keyfile: Path) -> None:
    client = _client(vault, keyfile)
    _call(lambda: client.remove_writer(address))
    click.echo(f"{address} may no longer add records")


@writers.command("list")
@_vault_option
@_keyfile_option
def writers_list(vault: str, keyfile: Path) -> None:
    client = _client(vault, keyfile)
    for address in _call(client.writers):
        click.echo(address)


@main.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the demo's database and keyfiles here (default: a temporary directory).",
)
@click.option(
    "--ledger",
    type=click.Choice(["sql", "evm"]),
    default="sql",
    show_default=True,
    help="The consent ledger: SQL tables, or a contract on an in-process EVM chain.",
)
def demo(workdir: Path | None, ledger: str) -> None:
    """Run the whole flow in-process on a temporary SQLite file, narrated."""
    from ehr.demo import run_demo

    sys.exit(run_demo(workdir, echo=click.echo, ledger=ledger))


# -- helpers ---------------------------------------------------------------------------------------
def _serve_public_url(host: str, port: int, public_url: str | None) -> str:
    """The public URL ``pchr serve`` gives the vault: the one given, or ``http://HOST:PORT`` for a loopback host.

    Listening beyond this machine without one is refused: the URL clients use (the token audience) cannot be known
    from the address the server binds, and the vault never takes it from a request's Host header.
    """
    from ehr.settings import check_public_url

    if public_url:
        try:
            return check_public_url(public_url)
        except ValueError as exc:
            raise click.ClickException(f"--public-url / PCHR_PUBLIC_URL: {exc}") from exc
    from ehr.local_guard import is_loopback_host

    if not is_loopback_host(_url_host(host)):  # the gateway's rule, on the bind address written as a Host value
        raise click.ClickException(
            f"--host {host} listens beyond this machine: set --public-url (or PCHR_PUBLIC_URL) to the URL clients "
            "use, e.g. https://vault.example.org; it is the access tokens' audience, and the vault does not take "
            "it from requests"
        )
    return f"http://{_url_host(host)}:{port}"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _prepare_ledger(ledger: str, workers: int) -> None:
    """Select the workers' consent ledger; on an EVM node without a contract yet, deploy one here, once."""
    os.environ["PCHR_LEDGER"] = ledger
    if ledger == "sql":
        return
    if ledger == "evm+tester":
        if workers != 1:
            raise click.ClickException("an in-process chain lives in one process: serve evm+tester with --workers 1")
        return
    from consent_chain.errors import LedgerError
    from ehr.api.app import build_evm_backend
    from ehr.settings import Settings

    settings = Settings.from_env()
    try:
        backend = build_evm_backend(settings, deploy=True)
    except (ValueError, OSError, LedgerError) as exc:
        raise click.ClickException(f"consent ledger {ledger}: {exc}") from exc
    os.environ["PCHR_LEDGER_CONTRACT"] = backend.address
    deployed = not int(settings.ledger_contract, 16)
    click.echo(
        f"consent ledger: contract {backend.address} on chain {backend.chain_id}, {backend.size()} entries"
        + (" (deployed now: set PCHR_LEDGER_CONTRACT to it to keep this ledger)" if deployed else "")
    )


def _call(fn: Any) -> Any:
    try:
        return fn()
    except VaultClientError as exc:
        raise click.ClickException(f"the vault refused: {exc.status} {exc.message}") from exc
    except InvalidRequest as exc:
        raise click.ClickException(exc.message) from exc


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
