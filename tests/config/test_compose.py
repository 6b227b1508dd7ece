"""``docker-compose.yml`` is the production topology (docs/operations.md#the-production-topology). There is no
Docker engine on these machines: the file is loaded and its properties checked against the settings."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("worker", "api")
# Interpolation as compose does it: ${NAME}, ${NAME:-default}, ${NAME:?message}.
VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")
# What an operator exports before `docker compose up` (the file refuses to start without them).
OPERATOR_ENV = {"AFTERSALES_ADMIN_KEY": "an-operator-admin-key-0123456789", "POSTGRES_PASSWORD": "secret"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]  # type: ignore[no-any-return]


def interpolate(value: str, environ: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        if environ.get(name):
            return environ[name]
        if operator == "?":
            raise AssertionError(f"compose would refuse to start: {argument or name}")
        return argument if operator == "-" else ""

    return VARIABLE.sub(one, value)


class ReadNames(dict[str, str]):
    """An environment that records every name ``load_settings`` asks for."""

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)


def settings_names() -> set[str]:
    environ = ReadNames({"AFTERSALES_ENV": "production", **OPERATOR_ENV})
    load_settings(environ)
    return environ.asked


def one_shot(service: dict[str, Any]) -> bool:
    """A job that runs to completion (schema, namespace) rather than a long-running service."""
    return str(service.get("restart", "no")).startswith(("no", "on-failure"))


def app_environment(service: dict[str, Any], environ: Mapping[str, str] = OPERATOR_ENV) -> dict[str, str]:
    return {name: interpolate(str(value), environ) for name, value in service["environment"].items()}


def test_a_real_temporal_cluster_on_postgresql(services: dict[str, dict[str, Any]]) -> None:
    server, schema, namespace = services["temporal"], services["temporal-schema"], services["temporal-namespace"]
    assert server["image"].startswith("temporalio/server:")
    assert not any("auto-setup" in s.get("image", "") for s in services.values()), "auto-setup images are deprecated"
    assert "start-dev" not in str(server.get("command", "")), "not the dev server"
    assert server["environment"]["DB"] == "postgres12" and server["environment"]["POSTGRES_SEEDS"] == "postgres"
    # Its schema is created and upgraded by admin-tools, of the server's own version, before it starts.
    assert schema["image"] == server["image"].replace("temporalio/server:", "temporalio/admin-tools:")
    assert server["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    script = mounted_script(schema)
    assert "setup-schema" in script and "update-schema" in script
    assert "temporal_visibility" in script and "postgres12" in script
    # The application's namespace is registered once the server is healthy; the apps wait for it.
    assert namespace["image"] == schema["image"]
    assert namespace["depends_on"]["temporal"]["condition"] == "service_healthy"
    assert "namespace create" in mounted_script(namespace)
    for name in APP_SERVICES:
        assert services[name]["depends_on"]["temporal-namespace"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")
    assert services["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert services["postgres"]["image"].startswith("postgres:")
    dynamic_config = server["environment"]["DYNAMIC_CONFIG_FILE_PATH"]
    assert any(volume.endswith(f":{dynamic_config}:ro") and (ROOT / volume.split(":")[0]).is_file()
               for volume in server["volumes"])


def mounted_script(service: dict[str, Any]) -> str:
    """The repository file a one-shot job runs (mounted into the container)."""
    [entry] = [part for part in service["entrypoint"] if part.startswith("/ops/")]
    [volume] = [v for v in service["volumes"] if v.split(":")[1] == entry]
    path = ROOT / volume.split(":")[0]
    assert path.is_file(), path
    return path.read_text()


def test_two_workers_and_the_gateway(services: dict[str, dict[str, Any]]) -> None:
    worker, api = services["worker"], services["api"]
    assert worker["command"] == ["python", "-m", "worker"] and worker["deploy"]["replicas"] == 2
    assert "container_name" not in worker, "a fixed name would forbid --scale"
    assert api["command"] == ["python", "-m", "api"]
    assert worker["build"] == api["build"] == "." and worker["image"] == api["image"]
    settings = load_settings(app_environment(api))
    assert any(port.endswith(f":{settings.http_port}") for port in api["ports"])
    # A stopping worker finishes its in-flight activities before compose kills it.
    grace = load_settings(app_environment(worker)).worker_shutdown_grace.total_seconds()
    assert seconds(worker["stop_grace_period"]) > grace


def seconds(duration: str) -> float:
    value, unit = re.fullmatch(r"(\d+)(s|m)", duration).groups()  # type: ignore[union-attr]
    return float(value) * (60 if unit == "m" else 1)


def test_app_environment_names_are_exactly_those_the_settings_read(services: dict[str, dict[str, Any]]) -> None:
    known = settings_names()
    for name in APP_SERVICES:
        environment = app_environment(services[name])
        assert set(environment) <= known, set(environment) - known
        # And the values are ones the settings accept, for production.
        settings = load_settings(environment)
        assert settings.env == "production" and not settings.embedded_temporal
        assert settings.database_url.startswith("postgresql+asyncpg://") and "@postgres:5432/" in settings.database_url
        assert settings.temporal_target == "temporal:7233" and settings.http_host == "0.0.0.0"
    assert load_settings(app_environment(services["worker"])).worker_metrics_port > 0


def test_secrets_come_from_the_operator(services: dict[str, dict[str, Any]]) -> None:
    for name in APP_SERVICES:
        raw = services[name]["environment"]
        assert raw["AFTERSALES_ADMIN_KEY"].startswith("${AFTERSALES_ADMIN_KEY:?")
        assert "${POSTGRES_PASSWORD:?" in raw["AFTERSALES_DATABASE_URL"]
        with pytest.raises(AssertionError, match="compose would refuse to start"):
            app_environment(services[name], {})


def test_images_are_pinned_and_services_have_health_checks(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service["image"]
        _, _, tag = image.rpartition(":")
        assert re.fullmatch(r"v?\d+\.\d+(\.\d+)?", tag), f"{name}: {image} is not pinned to a version"
        if one_shot(service):
            assert any(d.get("condition") == "service_completed_successfully"
                       for other in services.values() for key, d in _depends_on(other) if key == name), name
        else:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"


def _depends_on(service: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    depends = service.get("depends_on", {})
    if isinstance(depends, list):
        return ((name, {}) for name in depends)
    return iter(depends.items())


def test_prometheus_scrapes_the_gateway_and_every_worker(services: dict[str, dict[str, Any]]) -> None:
    prometheus = services["prometheus"]
    [config_volume] = [v for v in prometheus["volumes"] if v.endswith("prometheus.yml:ro")]
    config = yaml.safe_load((ROOT / config_volume.split(":")[0]).read_text())
    targets: set[tuple[str, int, str]] = set()
    for job in config["scrape_configs"]:
        path = job.get("metrics_path", "/metrics")
        for sd in job.get("dns_sd_configs", []):
            targets |= {(name, sd["port"], path) for name in sd["names"]}
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, _, port = target.partition(":")
                targets.add((host, int(port), path))
    api = load_settings(app_environment(services["api"]))
    worker = load_settings(app_environment(services["worker"]))
    assert ("api", api.http_port, "/metrics") in targets
    # DNS discovery finds every replica of the worker service, however many are scaled up.
    assert ("worker", worker.worker_metrics_port, "/metrics") in targets
    assert next(job for job in config["scrape_configs"] if any(
        "worker" in sd["names"] for sd in job.get("dns_sd_configs", [])))["dns_sd_configs"][0]["type"] == "A"
