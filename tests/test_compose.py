"""docker-compose.yml, the Dockerfile and deploy/ checked without a Docker engine.

- the compose file, interpolated from ``.env.example`` the way compose does, validates
  against the Compose Specification JSON schema. ``tests/compose-spec.json`` is that
  schema as shipped in the PyPI package docker-compose 1.29.2
  (``compose/config/compose_spec.json``, Apache-2.0, Docker Inc.); it predates the
  top-level ``name`` key, which the test adds to it;
- every bind-mounted file exists, every ``${VAR}`` is in ``.env.example``, every
  ``SOFTPLACE_*`` variable is a real settings field and the settings load, every service
  command is a real ``softplace`` command, every Dockerfile COPY source exists;
- the mosquitto configuration and ACL run on the real (Debian) mosquitto: anonymous
  clients are refused and a device can publish and read only its own topics.
"""

from __future__ import annotations

import getpass
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from devkit.embedded_broker import free_port
from softplace.settings import ENV_PREFIX
from softplace_cli import COMMANDS
from softplace_cli.settings import Settings, load_settings

ROOT = Path(__file__).parents[1]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA = Path(__file__).with_name("compose-spec.json")
SOFTPLACE_IMAGE = "softplace:local"
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>\w+)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<plain>\w+))"
)


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution: $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, $$."""

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name = match.group("braced") or match.group("plain")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        if (op in {":-", ":?"} and not value) or (op in {"-", "?"} and value is None):
            if op.endswith("?"):
                raise AssertionError(f"{name} is required: {arg}")
            return arg
        return value or ""

    return _INTERPOLATION.sub(replace, text)


def variables_in(text: str) -> set[str]:
    return {m.group("braced") or m.group("plain") for m in _INTERPOLATION.finditer(text)
            if not m.group("escaped")}


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(interpolate(COMPOSE.read_text(), env_example()))
    return data


def softplace_services() -> dict[str, dict[str, Any]]:
    return {name: service for name, service in compose()["services"].items()
            if service.get("image") == SOFTPLACE_IMAGE}


def test_compose_validates_against_the_compose_spec_schema() -> None:
    schema = json.loads(SCHEMA.read_text())
    schema["properties"]["name"] = {"type": "string"}  # added to the spec after 1.29.2
    jsonschema.Draft201909Validator.check_schema(schema)  # its "$schema" is draft 2019-09
    errors = sorted(jsonschema.Draft201909Validator(schema).iter_errors(compose()), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_compose_schema_rejects_a_broken_file() -> None:
    schema = json.loads(SCHEMA.read_text())
    broken = compose()
    broken["services"]["grafana"]["healthcheck"]["retries"] = "often"
    broken["services"]["ingest"]["restrat"] = "always"
    assert len(list(jsonschema.Draft201909Validator(schema).iter_errors(broken))) >= 2


def test_compose_every_variable_is_in_env_example_and_used() -> None:
    used = variables_in(COMPOSE.read_text().replace("$$", ""))
    example = set(env_example())
    assert used <= example, f"add to .env.example: {sorted(used - example)}"
    assert example <= used, f"unused in docker-compose.yml: {sorted(example - used)}"


def _bind_mounts() -> Iterator[tuple[str, str, str]]:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                yield name, source, target


def test_compose_every_bind_mount_exists_in_the_repo() -> None:
    mounts = list(_bind_mounts())
    assert len(mounts) >= 8
    for service, source, target in mounts:
        path = ROOT / source
        assert path.exists(), f"{service}: {source} does not exist"
        looks_like_file = Path(target).suffix in {".conf", ".sh", ".yaml"} or target.endswith(
            "/acl")
        assert path.is_file() == looks_like_file, f"{service}: {source} -> {target}"


def test_compose_named_volumes_are_declared() -> None:
    data = compose()
    declared = set(data["volumes"])
    for name, service in data["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} is not declared"


def _settings_field(model: type[BaseModel], path: list[str]) -> None:
    name, rest = path[0], path[1:]
    assert name in model.model_fields, f"{model.__name__} has no field {name!r}"
    annotation = model.model_fields[name].annotation
    if rest:
        assert isinstance(annotation, type) and issubclass(annotation, BaseModel), (
            f"{model.__name__}.{name} is not a section")
        _settings_field(annotation, rest)


@pytest.mark.parametrize("service", sorted(softplace_services()))
def test_compose_softplace_variables_are_settings_fields(service: str) -> None:
    environment: dict[str, str] = softplace_services()[service]["environment"]
    names = [n for n in environment if n.startswith(ENV_PREFIX) and n != f"{ENV_PREFIX}CONFIG"]
    assert names
    for name in names:
        _settings_field(Settings, name[len(ENV_PREFIX):].lower().split("__"))


@pytest.mark.parametrize("service", sorted(softplace_services()))
def test_compose_service_settings_load(service: str) -> None:
    environment: dict[str, str] = softplace_services()[service]["environment"]
    config = Path(environment["SOFTPLACE_CONFIG"])
    mounts = {target: source for _, source, target in _bind_mounts()}
    local = ROOT / mounts[str(config.parent)] / config.name
    settings = load_settings(local, environ=environment)
    assert settings.storage.backend == "influxdb"
    assert settings.mqtt.host == "mosquitto"
    assert settings.influxdb.url == "http://influxdb:8086"
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.get_secret_value() == env_example()["MQTT_SERVICE_PASSWORD"]


def test_compose_services_run_real_softplace_commands() -> None:
    services = softplace_services()
    assert set(services) == {"gateway", "ingest", "detector", "web"}
    for name, service in services.items():
        assert service["command"][0] in COMMANDS, f"{name}: {service['command']}"
        assert service["depends_on"]["mosquitto"]["condition"] == "service_healthy"
        assert "healthcheck" in service


def test_compose_every_service_has_a_healthcheck_and_restart_policy() -> None:
    for name, service in compose()["services"].items():
        assert service["healthcheck"]["test"], name
        assert service["restart"] == "unless-stopped", name


def test_compose_grafana_gets_every_provisioning_variable() -> None:
    grafana = compose()["services"]["grafana"]
    provisioning = ROOT / "dashboards" / "provisioning"
    needed = set()
    for path in provisioning.rglob("*.yaml"):
        if path.parent.name == "alerting":  # rule models keep $timeFilter: not interpolated
            continue
        needed |= variables_in(path.read_text())
    assert needed
    assert needed <= set(grafana["environment"]), sorted(needed - set(grafana["environment"]))


def test_compose_dockerfile_copies_existing_paths_and_runs_softplace() -> None:
    text = (ROOT / "Dockerfile").read_text()
    copies = [line.split()[1:-1] for line in text.splitlines()
              if line.startswith("COPY") and "--from" not in line]
    sources = [source for sources in copies for source in sources]
    missing = [source for source in sources if not (ROOT / source).exists()]
    assert not missing, f"Dockerfile copies missing paths: {missing}"
    pyproject = (ROOT / "pyproject.toml").read_text()
    for package in ("softplace", "gateway", "ingest", "detector", "dashboards"):
        assert f'"{package}"' in pyproject and package in sources, package
    assert re.search(r"^FROM python:3\.11-slim", text, re.MULTILINE)
    assert re.search(r"^USER softplace$", text, re.MULTILINE)
    assert 'ENTRYPOINT ["softplace"]' in text


def _mosquitto_conf() -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for line in (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition(" ")
            options.setdefault(key, []).append(value.strip())
    return options


def test_compose_mosquitto_config_is_persistent_authenticated_and_unbounded() -> None:
    conf = _mosquitto_conf()
    assert conf["persistence"] == ["true"]
    assert conf["allow_anonymous"] == ["false"]
    assert conf["max_queued_messages"] == ["0"]
    assert conf["max_queued_bytes"] == ["0"]
    assert conf["persistent_client_expiration"]
    mounted = {target for _, _, target in _bind_mounts()}
    assert conf["acl_file"][0] in mounted
    entrypoint = (ROOT / "deploy" / "mosquitto" / "entrypoint.sh").read_text()
    assert f"passwd={conf['password_file'][0]}" in entrypoint


# --- the broker configuration on a real mosquitto ---------------------------------------

SERVICE_USER = "softplace-service"


def _broker_config(workdir: Path, port: int) -> Path:
    text = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    text = text.replace("listener 1883", f"listener {port} 127.0.0.1")
    text = text.replace("/mosquitto/config/", f"{workdir}/").replace(
        "/mosquitto/data/", f"{workdir}/")
    text = re.sub(r"^log_dest .*$", f"log_dest file {workdir}/mosquitto.log", text,
                  flags=re.MULTILINE)
    text += f"user {getpass.getuser()}\n"  # as root, mosquitto would drop to "mosquitto"
    shutil.copy(ROOT / "deploy" / "mosquitto" / "acl", workdir / "acl")
    passwd = workdir / "passwd"
    passwd.write_text("")
    for user, password in ((SERVICE_USER, "svc"), ("dev-a", "a"), ("dev-b", "b")):
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
    config = workdir / "mosquitto.conf"
    config.write_text(text)
    return config


class DeployedBroker:
    """The Debian mosquitto running deploy/mosquitto's configuration on a free port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.config = _broker_config(workdir, self.port)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while _pub(self.port, SERVICE_USER, "softplace/v1/s/probe") != 0:
            assert self.process.poll() is None, self.process.stderr and self.process.stderr.read()
            assert time.monotonic() < deadline, "mosquitto did not start"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            if self.process.stderr is not None:
                self.process.stderr.close()
            self.process = None


@pytest.fixture
def deployed_broker(tmp_path: Path) -> Iterator[DeployedBroker]:
    broker = DeployedBroker(tmp_path)
    broker.start()
    yield broker
    broker.stop()


def _pub(port: int, user: str | None, topic: str, retain: bool = False,
         lines: str | None = None) -> int:
    auth = ["-u", user, "-P", {"dev-a": "a", "dev-b": "b"}.get(user, "svc")] if user else []
    payload = ["-l"] if lines is not None else ["-m", "m"]
    command = ["mosquitto_pub", "-p", str(port), "-q", "1", "-t", topic, *payload,
               "-V", "mqttv5", *auth, *(["-r"] if retain else [])]
    return subprocess.run(command, capture_output=True, check=False, timeout=30,
                          input=(lines or "").encode()).returncode


def _received(port: int, user: str, topic_filter: str) -> list[str]:
    password = {"dev-a": "a", "dev-b": "b"}.get(user, "svc")
    result = subprocess.run(
        ["mosquitto_sub", "-p", str(port), "-u", user, "-P", password, "-t", topic_filter,
         "-v", "-W", "1", "-V", "mqttv5"],
        capture_output=True, check=False, timeout=10, text=True)
    return sorted(line.split()[0] for line in result.stdout.splitlines())


@pytest.mark.services
def test_compose_broker_acl_confines_each_device_to_its_own_topics(
    deployed_broker: DeployedBroker,
) -> None:
    port = deployed_broker.port
    assert _pub(port, None, "softplace/v1/s/dev/dev-a/reading") != 0, "anonymous refused"
    for topic in ("softplace/v1/s/dev/dev-a/status", "softplace/v1/s/dev/dev-b/status"):
        _pub(port, "dev-a", topic, retain=True)
    _pub(port, SERVICE_USER, "softplace/v1/s/dev/dev-a/config", retain=True)
    _pub(port, SERVICE_USER, "softplace/v1/s/dev/dev-b/config", retain=True)
    # the service sees only what dev-a was allowed to publish
    assert _received(port, SERVICE_USER, "softplace/v1/+/dev/+/status") == [
        "softplace/v1/s/dev/dev-a/status"]
    # a device reads its own configuration, not another's
    assert _received(port, "dev-a", "softplace/v1/s/dev/+/config") == [
        "softplace/v1/s/dev/dev-a/config"]
    assert _received(port, "dev-b", "softplace/v1/s/dev/dev-a/config") == []


def _consume(port: int, count: int, wait_s: int) -> list[str]:
    """A persistent-session QoS 1 consumer (like ingest) that reads up to ``count``."""
    result = subprocess.run(
        ["mosquitto_sub", "-p", str(port), "-u", SERVICE_USER, "-P", "svc", "-q", "1",
         "-c", "-i", "softplace-ingest-test", "-t", "softplace/v1/+/dev/+/reading",
         "-C", str(count), "-W", str(wait_s)],
        capture_output=True, check=False, timeout=60, text=True)
    return result.stdout.splitlines()


@pytest.mark.services
def test_compose_broker_keeps_everything_for_a_stopped_consumer_across_a_restart(
    deployed_broker: DeployedBroker,
) -> None:
    port = deployed_broker.port
    assert _consume(port, 1, 1) == []  # the session now exists; the consumer stops
    sent = [str(i) for i in range(3000)]  # mosquitto's default queue limit is 1000
    assert _pub(port, "dev-a", "softplace/v1/s/dev/dev-a/reading", lines="\n".join(sent)) == 0
    deployed_broker.stop()  # persistence: the queue is written to disk
    deployed_broker.start()
    assert _consume(port, len(sent), 10) == sent
