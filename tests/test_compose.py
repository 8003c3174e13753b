"""docker-compose.yml, the Dockerfile and deploy/ checked without a Docker engine.

- the compose file, interpolated from ``.env.example`` the way compose does, validates
  against the Compose Specification JSON schema. ``tests/compose-spec.json`` is that
  schema as shipped in the PyPI package docker-compose 1.29.2
  (``compose/config/compose_spec.json``, Apache-2.0, Docker Inc.); it predates the
  top-level ``name`` key, which the test adds to it;
- every bind-mounted file exists, every ``${VAR}`` is in ``.env.example``, every
  ``SOFTPLACE_*`` variable is a real settings field and the settings load, every service
  command is a real ``softplace`` command, every Dockerfile COPY source exists;
- the mosquitto configuration runs on the real (Debian) mosquitto through its own
  entrypoint and keeps a stopped consumer's queue across a restart; the ACL's probes are
  in tests/provision/test_broker_acl.py.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from softplace.settings import ENV_PREFIX
from softplace_cli import COMMANDS
from softplace_cli.settings import Settings, load_settings
from tests.deployed_broker import SERVICE_PASSWORD, DeployedBroker, deployed

ROOT = Path(__file__).parents[1]
GATEWAY = "softplace-gateway-s"
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
    assert conf["use_username_as_clientid"] == ["true"]
    assert conf["max_queued_messages"] == ["0"]
    assert conf["max_queued_bytes"] == ["0"]
    assert conf["persistent_client_expiration"]
    entrypoint = (ROOT / "deploy" / "mosquitto" / "entrypoint.sh").read_text()
    config_dir = "config_dir=${SOFTPLACE_BROKER_CONFIG_DIR:-/mosquitto/config}"
    assert config_dir in entrypoint
    assert conf["password_file"] == ["/mosquitto/config/passwd"]
    assert conf["acl_file"] == ["/mosquitto/config/acl"]
    mounted = {target for _, _, target in _bind_mounts()}
    assert "/softplace/acl" in mounted  # the services' part; entrypoint.sh adds the devices
    assert "/mosquitto/certs" in mounted
    ports = compose()["services"]["mosquitto"]["ports"]
    assert any(p.endswith(":8883") for p in ports), "the TLS listener the firmware defaults to"


def _acl_users() -> set[str]:
    text = (ROOT / "deploy" / "mosquitto" / "acl").read_text()
    site = env_example()["SOFTPLACE_SITE"]
    return {line.split()[1].replace("@SITE@", site) for line in text.splitlines()
            if line.startswith("user ")}


BROKER_FREE = {"web"}  # reads the store only; it never connects to the broker


def _broker_services() -> dict[str, Any]:
    return {n: s for n, s in softplace_services().items() if n not in BROKER_FREE}


@pytest.mark.parametrize("service", sorted(_broker_services()))
def test_compose_each_service_uses_its_own_broker_account(service: str) -> None:
    environment: dict[str, str] = _broker_services()[service]["environment"]
    username = environment["SOFTPLACE_MQTT__USERNAME"]
    assert username in _acl_users(), f"{service}: {username} has no ACL entry"
    others = {n: s["environment"]["SOFTPLACE_MQTT__USERNAME"]
              for n, s in _broker_services().items() if n != service}
    assert username not in others.values(), "one account per service (one session each)"


# --- the broker configuration on a real mosquitto ---------------------------------------


@pytest.fixture
def deployed_broker(tmp_path: Path) -> Iterator[DeployedBroker]:
    yield from deployed(tmp_path, {"dev-a": ("s", "a"), "dev-b": ("s", "b")})


def _pub(port: int, user: str, password: str, topic: str, lines: str) -> int:
    command = ["mosquitto_pub", "-p", str(port), "-q", "1", "-t", topic, "-l",
               "-V", "mqttv5", "-u", user, "-P", password]
    return subprocess.run(command, capture_output=True, check=False, timeout=30,
                          input=lines.encode()).returncode


def _consume(port: int, count: int, wait_s: int) -> list[str]:
    """A persistent-session QoS 1 consumer (like the gateway) that reads up to ``count``."""
    result = subprocess.run(
        ["mosquitto_sub", "-p", str(port), "-u", GATEWAY, "-P", SERVICE_PASSWORD, "-q", "1",
         "-c", "-i", GATEWAY, "-t", "softplace/v1/s/dev/+/reading", "-V", "mqttv5",
         "-x", "3600", "-C", str(count), "-W", str(wait_s)],
        capture_output=True, check=False, timeout=60, text=True)
    return result.stdout.splitlines()


@pytest.mark.services
def test_compose_broker_keeps_everything_for_a_stopped_consumer_across_a_restart(
    deployed_broker: DeployedBroker,
) -> None:
    port = deployed_broker.port
    assert _consume(port, 1, 1) == []  # the session now exists; the consumer stops
    sent = [str(i) for i in range(3000)]  # mosquitto's default queue limit is 1000
    assert _pub(port, "dev-a", "a", "softplace/v1/s/dev/dev-a/reading", "\n".join(sent)) == 0
    deployed_broker.stop()  # persistence: the queue is written to disk
    deployed_broker.start()
    assert _consume(port, len(sent), 10) == sent
