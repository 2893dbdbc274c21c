"""docker/: the Dockerfiles and compose.yaml, checked without Docker.

Docker cannot run on the machine pchr is built on, so nothing here builds an image or starts a container. Instead:

- compose.yaml is parsed and held to the essentials of the Compose Specification
  (https://github.com/compose-spec/compose-spec/blob/main/spec.md): known top-level and service keys, images
  pinned to a version, a healthcheck on every service, ``depends_on`` waiting for health, named volumes declared,
  ports on loopback. And to pchr: every ``PCHR_*`` variable it sets is one the code reads, the database URL names
  the postgres service with its user and database, the ledger URL names the EVM service on the port it serves.
- The Dockerfiles are parsed instruction by instruction: pinned base images, the lock installed before the code,
  an unprivileged user, a healthcheck on ``/metadata``, ``pchr serve`` on 0.0.0.0 on the exposed port.
- ``docker compose config`` (Compose's own validation) runs where a docker client with the compose plugin exists,
  and is skipped, saying why, where not.
- A slow test installs pchr as the Dockerfile does and runs its CMD with its ENV and its HEALTHCHECK, as processes.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import make_url

from tests.storage.databases import DATABASES

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"

# The Compose Specification's top-level elements and service attributes (spec.md, "Compose file", "Services").
TOP_LEVEL = {"version", "name", "include", "services", "networks", "volumes", "secrets", "configs", "models"}
SERVICE_KEYS = {
    "annotations", "attach", "build", "blkio_config", "cap_add", "cap_drop", "cgroup", "cgroup_parent", "command",
    "configs", "container_name", "cpu_count", "cpu_percent", "cpu_shares", "cpu_quota", "cpu_period",
    "cpu_rt_period", "cpu_rt_runtime", "cpus", "cpuset", "credential_spec", "depends_on", "deploy", "develop",
    "device_cgroup_rules", "devices", "dns", "dns_opt", "dns_search", "domainname", "entrypoint", "env_file",
    "environment", "expose", "extends", "external_links", "extra_hosts", "gpus", "group_add", "healthcheck",
    "hostname", "image", "init", "ipc", "isolation", "labels", "label_file", "links", "logging", "mac_address",
    "mem_limit", "mem_reservation", "mem_swappiness", "memswap_limit", "models", "network_mode", "networks",
    "oom_kill_disable", "oom_score_adj", "pid", "pids_limit", "platform", "ports", "post_start", "pre_stop",
    "privileged", "profiles", "provider", "pull_policy", "read_only", "restart", "runtime", "scale", "secrets",
    "security_opt", "shm_size", "stdin_open", "stop_grace_period", "stop_signal", "storage_opt", "sysctls", "tmpfs",
    "tty", "ulimits", "use_api_socket", "user", "userns_mode", "uts", "volumes", "volumes_from", "working_dir",
}  # fmt: skip
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"}
DEPENDS_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
DURATION = re.compile(r"^(\d+(us|ms|s|m|h))+$")
VERSIONED_TAG = re.compile(r"^[a-z0-9][a-z0-9._/-]*:\d+\.\d+(\.\d+)?(-[a-z0-9.-]+)?$")
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - what a server in a container must listen on
VARIABLE = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::?[-?][^}]*)?\}")


# -- reading the files ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form CMD/HEALTHCHECK/ENTRYPOINT (after any options)."""
        start = self.arguments.index("[")
        value = json.loads(self.arguments[start:])
        assert isinstance(value, list)
        assert all(isinstance(v, str) for v in value)
        return value


def dockerfile(path: Path) -> list[Instruction]:
    """A Dockerfile's instructions, continuation lines joined and comments dropped (the reference's syntax)."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), " ".join(arguments.split())))
        pending = ""
    assert pending == "", f"{path} ends inside a continued line"
    return instructions


def only(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in instructions if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


def env_instructions(instructions: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.arguments):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def api_image() -> list[Instruction]:
    return dockerfile(DOCKER / "Dockerfile")


@pytest.fixture(scope="module")
def evm_image() -> list[Instruction]:
    return dockerfile(DOCKER / "evm-node" / "Dockerfile")


def settings_read_by_the_code() -> set[str]:
    """Every PCHR_* name that appears as a string in pchr's packages (settings, the CLI, the model registry)."""
    names: set[str] = set()
    for package in ("ehr", "consent_chain", "models", "zk"):
        for source in (ROOT / package).rglob("*.py"):
            names.update(re.findall(r"[\"'](PCHR_[A-Z0-9_]+)[\"']", source.read_text()))
    return names


def interpolated(value: str, env: dict[str, str]) -> str:
    """``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}`` as Compose fills them in."""

    def fill(match: re.Match[str]) -> str:
        name, rest = match.group(1), match.group(0)[2 + len(match.group(1)) : -1]
        if name in env and (env[name] or not rest.startswith(":")):
            return env[name]
        if rest.startswith((":-", "-")):
            return rest.split("-", 1)[1]
        if rest.startswith((":?", "?")):
            raise KeyError(f"{name} is required: {rest.split('?', 1)[1]}")
        raise KeyError(f"{name} is not set")

    return VARIABLE.sub(fill, value)


# -- compose.yaml -------------------------------------------------------------------------------------
def test_compose_uses_the_specs_elements_only(compose: dict[str, Any]) -> None:
    assert set(compose) <= TOP_LEVEL
    assert "version" not in compose  # obsolete in the Compose Specification
    assert re.fullmatch(r"[a-z0-9][a-z0-9_-]*", compose["name"])
    assert set(compose["services"]) == {"api", "postgres", "evm"}
    for name, service in compose["services"].items():
        unknown = set(service) - SERVICE_KEYS
        assert not unknown, f"{name}: {unknown} are not Compose service attributes"
        assert "image" in service or "build" in service


def test_every_image_is_pinned_to_a_version(compose: dict[str, Any]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    hardhat = json.loads((DOCKER / "evm-node" / "package.json").read_text())["devDependencies"]["hardhat"]
    images = {name: service["image"] for name, service in compose["services"].items()}
    for name, image in images.items():
        assert VERSIONED_TAG.match(image), f"{name}: {image} is not pinned to a version"
        assert not image.endswith(":latest")
    # Images built here carry the version of what they contain.
    assert images["api"] == f"pchr:{project['version']}"
    assert images["evm"] == f"pchr-evm-node:{hardhat}"
    assert images["postgres"].startswith("postgres:15.")  # the major version the tests run on (Debian 12's)


def test_every_service_has_a_healthcheck_and_dependents_wait_for_it(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        check = service["healthcheck"]
        assert set(check) <= HEALTHCHECK_KEYS, name
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert len(check["test"]) > 1, name
        for key in ("interval", "timeout", "start_period"):
            assert DURATION.match(check[key]), f"{name}.healthcheck.{key} = {check[key]!r}"
        assert isinstance(check["retries"], int)
        assert check["retries"] > 0
        assert service["restart"] == "unless-stopped"
    depends = services["api"]["depends_on"]
    assert depends == {"postgres": {"condition": "service_healthy"}, "evm": {"condition": "service_healthy"}}
    for name, service in services.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in services
            assert rule["condition"] in DEPENDS_CONDITIONS
            assert target != name


def test_the_api_and_its_image_check_health_the_same_way(compose: dict[str, Any], api_image: list[Instruction]) -> None:
    in_image = only(api_image, "HEALTHCHECK")
    assert " CMD [" in in_image.arguments
    assert compose["services"]["api"]["healthcheck"]["test"] == ["CMD", *in_image.exec_form()]
    evm = compose["services"]["evm"]["healthcheck"]["test"]
    assert evm == ["CMD", "node", "healthcheck.js"]
    assert (DOCKER / "evm-node" / "healthcheck.js").is_file()
    postgres = compose["services"]["postgres"]
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert f"--username={postgres['environment']['POSTGRES_USER']}" in postgres["healthcheck"]["test"]


def test_the_api_sets_only_settings_the_code_reads(compose: dict[str, Any]) -> None:
    environment = compose["services"]["api"]["environment"]
    assert isinstance(environment, dict)
    read = settings_read_by_the_code()
    assert {"PCHR_DATABASE_URL", "PCHR_TOKEN_KEY", "PCHR_LEDGER_KEY"} <= read  # the scan finds what it should
    unknown = sorted(set(environment) - read)
    assert unknown == [], f"compose.yaml sets {unknown}, which no pchr code reads"
    assert all(isinstance(value, str) for value in environment.values())  # Compose wants strings here


def test_the_database_url_names_the_postgres_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    postgres = services["postgres"]["environment"]
    env = {"POSTGRES_PASSWORD": "s3cret"}
    url = make_url(interpolated(services["api"]["environment"]["PCHR_DATABASE_URL"], env))
    assert url.drivername == "postgresql+psycopg2"  # psycopg2-binary is what requirements.lock pins
    assert (url.host, url.port) == ("postgres", 5432)
    assert url.username == postgres["POSTGRES_USER"]
    assert url.database == postgres["POSTGRES_DB"]
    assert url.password == "s3cret"
    assert interpolated(postgres["POSTGRES_PASSWORD"], env) == "s3cret"  # one variable sets both ends
    with pytest.raises(KeyError, match=r"set POSTGRES_PASSWORD in docker/\.env"):
        interpolated(postgres["POSTGRES_PASSWORD"], {})


def test_the_ledger_settings_name_the_evm_service(compose: dict[str, Any], evm_image: list[Instruction]) -> None:
    api = compose["services"]["api"]
    environment = api["environment"]
    ledger = re.fullmatch(r"evm\+http://([a-z0-9-]+):(\d+)", environment["PCHR_LEDGER"])
    assert ledger is not None
    assert ledger.group(1) in compose["services"]
    assert only(evm_image, "EXPOSE").arguments == ledger.group(2)
    assert only(evm_image, "CMD").exec_form()[-4:] == ["--hostname", ALL_INTERFACES, "--port", ledger.group(2)]
    # The node's chain id (which an EVM ledger's EIP-712 domain takes) is the one its healthcheck waits for.
    chain_id = re.search(r"chainId: (\d+),", (DOCKER / "evm-node" / "hardhat.config.js").read_text())
    assert chain_id is not None
    assert f'"{hex(int(chain_id.group(1)))}"' in (DOCKER / "evm-node" / "healthcheck.js").read_text()
    # The operator's key is a Compose secret from a file git never sees.
    secret = environment["PCHR_LEDGER_OPERATOR_KEY"].removeprefix("/run/secrets/")
    assert api["secrets"] == [secret]
    secret_file = DOCKER / compose["secrets"][secret]["file"]
    assert secret_file.parent == DOCKER / "secrets"
    assert (DOCKER / "secrets" / ".gitignore").read_text().splitlines()[1:] == ["*", "!.gitignore"]
    assert int(interpolated(environment["PCHR_LEDGER_CONTRACT"], {}), 16) == 0  # zero: deploy one on first start


def test_variables_are_documented_and_secrets_stay_out_of_git(compose: dict[str, Any]) -> None:
    used = set(VARIABLE.findall(COMPOSE.read_text()))
    example = {line.split("=", 1)[0] for line in (DOCKER / "env.example").read_text().splitlines() if "=" in line}
    assert used == example
    assert (DOCKER / ".gitignore").read_text().splitlines()[1:] == [".env"]


def test_ports_are_published_on_loopback_to_the_ports_served(
    compose: dict[str, Any], api_image: list[Instruction], evm_image: list[Instruction]
) -> None:
    services = compose["services"]
    assert "ports" not in services["postgres"]  # only the API reaches the database
    served = {
        "api": only(api_image, "EXPOSE").arguments,
        "evm": only(evm_image, "EXPOSE").arguments,
    }
    for name, port in served.items():
        (mapping,) = services[name]["ports"]
        host_ip, host_port, container_port = mapping.split(":")
        assert host_ip == "127.0.0.1", f"{name} is published beyond this host"
        assert container_port == port
        assert host_port.isdigit()
    command = services["api"]["command"]
    assert command[command.index("--port") + 1] == served["api"]
    assert command[command.index("--host") + 1] == ALL_INTERFACES


def test_state_lives_in_declared_named_volumes(compose: dict[str, Any], api_image: list[Instruction]) -> None:
    services = compose["services"]
    declared = set(compose["volumes"])
    mounts = {name: [v.split(":") for v in service.get("volumes", [])] for name, service in services.items()}
    for name, volumes in mounts.items():
        for source, _target in volumes:
            assert source in declared, f"{name} mounts {source}, which is not a declared named volume"
    (api_mount,) = mounts["api"]
    (pg_mount,) = mounts["postgres"]
    assert pg_mount[1] == "/var/lib/postgresql/data"  # PGDATA of the postgres image
    environment = services["api"]["environment"]
    for setting in ("PCHR_TOKEN_KEY", "PCHR_LEDGER_KEY", "PCHR_ZK_KEY", "PCHR_MODEL_DIR"):
        assert environment[setting].startswith(api_mount[1] + "/"), f"{setting} would not survive a restart"
        assert env_instructions(api_image)[setting] == environment[setting]
    assert only(api_image, "VOLUME").exec_form() == [api_mount[1]]


def test_build_contexts_hold_their_dockerfiles(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]["build"]
    assert (DOCKER / api["context"] / api["dockerfile"]).resolve() == (DOCKER / "Dockerfile").resolve()
    evm = compose["services"]["evm"]["build"]
    assert (DOCKER / evm["context"] / "Dockerfile").is_file()


# -- the Dockerfiles --------------------------------------------------------------------------------------
def test_the_api_image_installs_the_lock_and_runs_pchr_serve_unprivileged(api_image: list[Instruction]) -> None:
    keywords = [i.keyword for i in api_image]
    base = api_image[0]
    assert base.keyword == "FROM"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base.arguments)
    assert keywords.count("FROM") == 1
    runs = [i for i in api_image if i.keyword == "RUN"]
    assert runs[0].arguments == "pip install -r requirements.lock"
    assert "pip install --no-deps --no-build-isolation ." in runs[1].arguments  # nothing from outside the lock
    copies = [i.arguments.split() for i in api_image if i.keyword == "COPY"]
    assert copies[0] == ["requirements.lock", "./"]  # the lock's layer comes before the code's
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    for *sources, _target in copies:
        for source in sources:
            assert (ROOT / source).exists(), source
            assert f"!{source}" in ignore or f"!{source}/**" in ignore, f"{source} is left out of the build context"
    # An unprivileged user, set after the last RUN and kept to the end.
    user = only(api_image, "USER")
    assert user.arguments not in ("root", "0")
    assert keywords.index("USER") > max(n for n, k in enumerate(keywords) if k == "RUN")
    assert re.fullmatch(rf"useradd --system .* {user.arguments}", runs[-1].arguments)
    # `pchr serve` on all interfaces, on the port exposed, checked on /metadata.
    command = only(api_image, "CMD").exec_form()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert command[0] in scripts
    assert command[1] == "serve"
    assert command[command.index("--host") + 1] == ALL_INTERFACES
    port = command[command.index("--port") + 1]
    assert only(api_image, "EXPOSE").arguments == port
    health = only(api_image, "HEALTHCHECK")
    assert f"http://127.0.0.1:{port}/metadata" in health.arguments
    assert (
        set(env_instructions(api_image))
        - {
            "PYTHONDONTWRITEBYTECODE",
            "PYTHONUNBUFFERED",
            "PIP_NO_CACHE_DIR",
            "PIP_DISABLE_PIP_VERSION_CHECK",
        }
        <= settings_read_by_the_code()
    )


def test_the_evm_node_image_is_pinned_by_its_lockfile(evm_image: list[Instruction]) -> None:
    base = evm_image[0]
    assert base.keyword == "FROM"
    assert re.fullmatch(r"node:20\.\d+\.\d+-bookworm-slim", base.arguments)  # Hardhat 3 refuses Node 20; 2 wants it
    package = json.loads((DOCKER / "evm-node" / "package.json").read_text())
    lock = json.loads((DOCKER / "evm-node" / "package-lock.json").read_text())
    hardhat = package["devDependencies"]["hardhat"]
    assert re.fullmatch(r"2\.\d+\.\d+", hardhat)  # an exact version, not a range
    assert lock["packages"][""]["devDependencies"] == package["devDependencies"]
    assert lock["packages"]["node_modules/hardhat"]["version"] == hardhat
    assert all("integrity" in entry for key, entry in lock["packages"].items() if key and not entry.get("link"))
    runs = [i.arguments for i in evm_image if i.keyword == "RUN"]
    assert runs[0].startswith("npm ci ")  # the lockfile, exactly; `npm install` could move within the ranges
    assert only(evm_image, "USER").arguments == "node"
    assert only(evm_image, "CMD").exec_form()[:2] == ["./node_modules/.bin/hardhat", "node"]
    assert only(evm_image, "HEALTHCHECK").exec_form() == ["node", "healthcheck.js"]


# -- Compose's own check, where it can run ------------------------------------------------------------------
@pytest.mark.integration
def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker client on this machine: compose.yaml is checked by the static tests above only")
    plugin = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, check=False)
    if plugin.returncode != 0:
        reason = (plugin.stderr.strip().splitlines() or ["no output"])[0]
        pytest.skip(f"the docker client here has no compose plugin ({reason}): the static tests above stand alone")
    env = {**os.environ, "POSTGRES_PASSWORD": "not-a-real-password"}
    done = subprocess.run(
        [docker, "compose", "--file", str(COMPOSE), "--project-directory", str(DOCKER), "config", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    resolved = json.loads(done.stdout)
    assert set(resolved["services"]) == {"api", "postgres", "evm"}
    assert "not-a-real-password@postgres:5432/pchr" in resolved["services"]["api"]["environment"]["PCHR_DATABASE_URL"]


# -- the image's install and command, as processes ---------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize("database_url", [DATABASES[-1]], indirect=True)  # PostgreSQL, when there is a server
def test_the_images_install_and_command_serve_metadata(
    api_image: list[Instruction], database_url: str, tmp_path: Path
) -> None:
    # RUN pip install --no-deps --no-build-isolation . (into a directory here, over this venv's pinned packages)
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    state = tmp_path / "var-lib-pchr"
    state.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PCHR_")},
        **{k: v.replace("/var/lib/pchr", str(state)) for k, v in env_instructions(api_image).items()},
        "PCHR_DATABASE_URL": database_url,
        "PCHR_MODELS": "",  # training the models is tested elsewhere; here it would only add half a minute
        "PYTHONPATH": str(site),
    }
    command = only(api_image, "CMD").exec_form()
    port = str(_free_port())
    command[command.index("--port") + 1] = port
    command[command.index("--host") + 1] = "127.0.0.1"
    entry = f"import sys; sys.argv = {command!r}; from ehr.cli import main; main()"
    health = only(api_image, "HEALTHCHECK").exec_form()
    assert health[0] == "python"
    probe = [sys.executable, *health[1:-1], health[-1].replace("8080", port)]
    server = subprocess.Popen(
        [sys.executable, "-c", entry], cwd=state, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(probe, capture_output=True, check=False).returncode != 0:
            assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
            assert time.monotonic() < deadline, "the HEALTHCHECK never passed"
            time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stdout is not None:
            server.stdout.close()
    assert (state / "token.key").stat().st_mode & 0o777 == 0o600  # PCHR_TOKEN_KEY, under the volume
    assert (state / "ledger.key").exists()  # PCHR_LEDGER_KEY


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
