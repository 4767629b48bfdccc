"""Static checks of the container deployment.

Covers docker-compose.yml, deploy/Dockerfile (one build target per image),
deploy/prometheus/, deploy/grafana/ and .dockerignore without a Docker engine: the compose file is validated against the
Compose Specification JSON schema vendored in check-jsonschema, and the wiring
between the files (connection settings, start order, published ports, scrape
targets, base image) is asserted directly, so a rename or a dropped setting in
one file fails here instead of at `docker compose up`.

`docker compose config` is run in addition only where the compose plugin exists.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"
DOCKERIGNORE = ROOT / ".dockerignore"

HTTP_SERVICES = ("intake", "sanctions", "reporting")
# Services built from deploy/Dockerfile, each from the build target of its own name.
BUILT = ("migrate", *HTTP_SERVICES)
HOST_PORTS = {"intake": 8001, "sanctions": 8002, "reporting": 8003}
LOOPBACK = "127.0.0.1"


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def _load_yaml(path: Path) -> dict[str, Any]:
    # safe_load resolves the `<<: *anchor` merge keys the compose file uses,
    # so services are seen exactly as Compose sees them.
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name} is not a YAML mapping"
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def prometheus() -> dict[str, Any]:
    return _load_yaml(PROMETHEUS)


def _env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, whichever of the two forms it uses."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in raw)
        return {key: value for key, value in pairs}
    return {key: "" if value is None else str(value) for key, value in raw.items()}


def _built_from_our_dockerfile(service: dict[str, Any]) -> bool:
    build = service.get("build")
    if build is None:
        return False
    if isinstance(build, str):
        context, dockerfile = build, "Dockerfile"
    else:
        context, dockerfile = build.get("context", "."), build.get("dockerfile", "Dockerfile")
    return (ROOT / context / dockerfile).resolve() == DOCKERFILE.resolve()


def _option(command: list[str], name: str) -> str:
    assert name in command, f"{name} missing from command {command}"
    return command[command.index(name) + 1]


def _container_port(service: dict[str, Any]) -> int:
    return int(_option(service["command"], "--port"))


def _published(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host ip, host port, container port) for each published port."""
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out.append((port.get("host_ip", ""), int(port["published"]), int(port["target"])))
            continue
        parts = str(port).split("/")[0].split(":")
        if len(parts) == 3:
            out.append((parts[0], int(parts[1]), int(parts[2])))
        elif len(parts) == 2:
            out.append(("", int(parts[0]), int(parts[1])))
        else:
            out.append(("", 0, int(parts[0])))
    return out


def _host_path(service: dict[str, Any], container_path: str) -> Path | None:
    """The repository file or folder a bind mount puts at `container_path`, if any."""
    best: tuple[str, str] | None = None
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if not source.startswith((".", "/")):
            continue  # a named volume
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            if best is None or len(target) > len(best[1]):
                best = (source, target)
    if best is None:
        return None
    source, target = best
    return (ROOT / source / container_path[len(target):].lstrip("/")).resolve()


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    """`NAME://host:port,...` as {NAME: (host, port)}."""
    result = {}
    for item in value.split(","):
        name, _, address = item.strip().partition("://")
        host, _, port = address.rpartition(":")
        result[name] = (host, int(port))
    return result


def _check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    # Prefer the console script installed beside this interpreter; fall back to
    # the module of the same package where scripts live elsewhere.
    script = Path(sys.executable).with_name("check-jsonschema")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "check_jsonschema"]
    return subprocess.run(
        [*command, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), args.strip()))
        pending = ""
    return instructions


def _stages() -> list[dict[str, Any]]:
    """Each build stage: its resolved base image, its name, its parent stage and its instructions."""
    global_args: dict[str, str] = {}
    stages: list[dict[str, Any]] = []
    for keyword, args in _dockerfile_instructions():
        if keyword == "ARG" and not stages and "=" in args:
            key, _, value = args.partition("=")
            global_args[key.strip()] = value.strip().strip('"')
        elif keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), words[0])
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            # `FROM runtime` refers to an earlier stage: inherit its base image.
            parent = None
            for stage in stages:
                if stage["name"] == image:
                    image, parent = stage["image"], stage["name"]
            stages.append({"image": image, "name": name, "parent": parent, "instructions": []})
        elif stages:
            stages[-1]["instructions"].append((keyword, args))
    return stages


def _stage(name: str) -> dict[str, Any]:
    """A named stage, with the instructions it inherits from its parent stages first."""
    by_name = {stage["name"]: stage for stage in _stages() if stage["name"]}
    assert name in by_name, f"deploy/Dockerfile has no stage named {name!r}"
    chain = [by_name[name]]
    while chain[-1]["parent"]:
        chain.append(by_name[chain[-1]["parent"]])
    inherited = [pair for stage in reversed(chain) for pair in stage["instructions"]]
    return {**by_name[name], "instructions": inherited}


def _last(stage: dict[str, Any], keyword: str) -> str | None:
    """The arguments of the stage's last `keyword` instruction (the one that takes effect)."""
    found = [args for key, args in stage["instructions"] if key == keyword]
    return found[-1] if found else None


def _exec_form(args: str) -> list[str]:
    return json.loads(args)


def _python_version(image: str) -> tuple[int, int] | None:
    match = re.match(r"^(?:[\w.\-]+/)?(?:library/)?python:(\d+)\.(\d+)", image)
    return (int(match.group(1)), int(match.group(2))) if match else None


# --------------------------------------------------------------------------
# the Compose Specification
# --------------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification() -> None:
    result = _check_jsonschema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr
    # Where the compose plugin exists (it needs no engine) it checks the file too;
    # elsewhere the schema check above stands alone.
    if _compose_plugin() is not None:
        config = subprocess.run([*_compose_plugin(), "-f", str(COMPOSE), "config", "-q"], cwd=ROOT,
                                capture_output=True, text=True, timeout=120, check=False)
        assert config.returncode == 0, config.stdout + config.stderr


def _compose_plugin() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    try:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [docker, "compose"] if probe.returncode == 0 else None


def test_schema_check_rejects_an_invalid_compose_file(tmp_path: Path) -> None:
    # Guards the check above against passing vacuously (e.g. a schema that
    # accepts anything): a misspelt service key must be reported.
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  web:\n    image: nginx\n    restart_policy: always\n", encoding="utf-8")
    result = _check_jsonschema(bad)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "restart_policy" in result.stdout + result.stderr


def test_compose_file_has_no_obsolete_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose, "the Compose Specification dropped `version:`; remove it"


# --------------------------------------------------------------------------
# services built from deploy/Dockerfile
# --------------------------------------------------------------------------


def test_migrate_and_the_three_services_are_built_from_the_shared_dockerfile(services: dict) -> None:
    built = {name for name, service in services.items() if _built_from_our_dockerfile(service)}
    assert built == set(BUILT)


def test_each_built_service_is_its_own_image_from_the_target_of_its_name(services: dict) -> None:
    images = set()
    for name in BUILT:
        service = services[name]
        assert service["build"].get("target") == name, f"{name} must build the {name!r} target"
        _stage(name)  # the target exists
        images.add(service["image"])
    assert len(images) == len(BUILT), "each service gets its own image name"


def test_each_image_runs_by_default_what_compose_runs(services: dict) -> None:
    # `docker run vanda-intake` and Kubernetes without args must start the same thing compose does.
    for name in BUILT:
        cmd = _last(_stage(name), "CMD")
        assert cmd is not None and _exec_form(cmd) == services[name]["command"], name


def test_every_service_built_from_the_dockerfile_gets_kafka_and_postgres(services: dict) -> None:
    for name, service in services.items():
        if not _built_from_our_dockerfile(service):
            continue
        env = _env(service)
        assert env.get("KAFKA_BOOTSTRAP_SERVERS"), f"{name} lacks KAFKA_BOOTSTRAP_SERVERS"
        assert env.get("DATABASE_URL"), f"{name} lacks DATABASE_URL"


def test_kafka_bootstrap_servers_is_an_in_network_advertised_listener(services: dict) -> None:
    kafka_env = _env(services["kafka"])
    advertised = set(_listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"]).values())
    for name, service in services.items():
        if not _built_from_our_dockerfile(service):
            continue
        for server in _env(service)["KAFKA_BOOTSTRAP_SERVERS"].split(","):
            host, _, port = server.strip().rpartition(":")
            assert host == "kafka", f"{name} must reach Kafka by its compose service name, not {host!r}"
            assert (host, int(port)) in advertised, f"{name}: {server} is not an advertised Kafka listener"


def test_database_url_matches_the_postgres_service(services: dict) -> None:
    pg_env = _env(services["postgres"])
    for name, service in services.items():
        if not _built_from_our_dockerfile(service):
            continue
        url = urlsplit(_env(service)["DATABASE_URL"])
        assert url.scheme in {"postgresql", "postgres"}, name
        assert (url.hostname, url.port or 5432) == ("postgres", 5432), name
        assert url.username == pg_env["POSTGRES_USER"], name
        assert url.password == pg_env["POSTGRES_PASSWORD"], name
        assert url.path.lstrip("/") == pg_env["POSTGRES_DB"] == "vanda", name


def test_only_intake_gets_the_pseudonym_key_and_from_the_environment(services: dict) -> None:
    # `${VAR:?message}`: compose refuses to start without the operator's value; no default key exists.
    for key in ("INTAKE_PSEUDONYM_KEY", "INTAKE_IDENTITY_KEY"):
        assert _env(services["intake"]).get(key, "").startswith(f"${{{key}:?"), f"{key}: required, no default"
    assert "INTAKE_PSEUDONYM_KEY_VERSION" in _env(services["intake"])
    for name in set(services) - {"intake"}:
        for key in ("INTAKE_PSEUDONYM_KEY", "INTAKE_IDENTITY_KEY"):
            assert key not in _env(services[name]), f"{name} must not see intake's {key}"


def test_role_token_secret_is_passed_through_never_defaulted(services: dict) -> None:
    # An empty or made-up default would let anyone who reads this file sign tokens.
    for name in ("intake", "sanctions", "reporting"):
        environment = services[name]["environment"]
        assert "AUTH_JWT_SECRET" in environment and environment["AUTH_JWT_SECRET"] is None, (
            f"{name}: pass AUTH_JWT_SECRET through from the environment, with no value here")


def test_http_services_serve_their_own_name_on_all_interfaces(services: dict) -> None:
    for name in HTTP_SERVICES:
        command = services[name]["command"]
        assert command[:2] == ["serve", name], command
        # Inside the container it must bind beyond loopback or no port mapping reaches it.
        assert _option(command, "--host") == "0.0.0.0", name


def test_http_services_publish_their_port_on_loopback(services: dict) -> None:
    for name in HTTP_SERVICES:
        service = services[name]
        assert _published(service) == [(LOOPBACK, HOST_PORTS[name], _container_port(service))], name


def test_http_services_health_check_readiness_on_their_port(services: dict) -> None:
    for name in HTTP_SERVICES:
        service = services[name]
        check = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{_container_port(service)}/readyz" in check, name
        assert not service["healthcheck"].get("disable"), name


def test_http_services_start_after_kafka_is_healthy_and_migrations_ran(services: dict) -> None:
    for name in HTTP_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["kafka"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name


def test_migrate_runs_once_after_postgres_is_healthy(services: dict) -> None:
    migrate = services["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    # A restart policy would rerun a finished one-shot job forever.
    assert migrate.get("restart", "no") == "no"


def test_every_published_port_is_bound_to_loopback(services: dict) -> None:
    for name, service in services.items():
        for host_ip, host_port, _ in _published(service):
            assert host_ip == LOOPBACK, f"{name} publishes {host_port} beyond loopback"


# --------------------------------------------------------------------------
# Kafka and PostgreSQL
# --------------------------------------------------------------------------


def test_dependencies_waited_on_as_healthy_have_health_checks(services: dict) -> None:
    for name, service in services.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            if isinstance(spec, dict) and spec.get("condition") == "service_healthy":
                check = services[dependency].get("healthcheck") or {}
                assert check.get("test") and not check.get("disable"), f"{name} waits on {dependency}'s health"


def test_kafka_is_a_single_kraft_node_that_never_auto_creates_topics(services: dict) -> None:
    kafka = services["kafka"]
    env = _env(kafka)
    assert kafka["image"].startswith("apache/kafka:")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@")
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"].lower() == "false"
    assert env["KAFKA_NUM_PARTITIONS"] == "6"
    factors = {k: v for k, v in env.items() if k.endswith("REPLICATION_FACTOR")}
    assert "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR" in factors
    assert set(factors.values()) == {"1"}, factors


def test_kafka_listeners_are_consistent(services: dict) -> None:
    env = _env(services["kafka"])
    protocols = dict(pair.split(":") for pair in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    listeners = _listeners(env["KAFKA_LISTENERS"])
    advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert set(listeners) <= set(protocols) and controller in listeners
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    # Every advertised address is one the broker listens on, on the same port.
    for name, (_, port) in advertised.items():
        assert listeners[name][1] == port, name
    # The controller port the quorum voters name is the controller listener.
    voter_port = int(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].rpartition(":")[2])
    assert listeners[controller][1] == voter_port
    # Host tools reach the broker on 127.0.0.1:19092, and it advertises exactly that.
    assert (LOOPBACK, 19092) in advertised.values()
    assert (LOOPBACK, 19092, 19092) in _published(services["kafka"])
    assert ("kafka", 9092) in advertised.values()


def test_postgres_keeps_data_in_a_named_volume_at_the_18_layout(compose: dict, services: dict) -> None:
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:")
    # 18+ images store data under /var/lib/postgresql/<major>/docker and refuse
    # to start with a volume at the old /var/lib/postgresql/data.
    mounts = {v.split(":")[1]: v.split(":")[0] for v in postgres["volumes"]}
    assert "/var/lib/postgresql" in mounts
    assert mounts["/var/lib/postgresql"] in (compose.get("volumes") or {}), "use a named volume"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


# --------------------------------------------------------------------------
# Prometheus
# --------------------------------------------------------------------------


def _scrape_targets(prometheus: dict[str, Any]) -> dict[str, set[str]]:
    targets: dict[str, set[str]] = {}
    for job in prometheus["scrape_configs"]:
        # /metrics is Prometheus's default path; anything else would miss the services' endpoint.
        assert job.get("metrics_path", "/metrics") == "/metrics", job["job_name"]
        found = targets.setdefault(job["job_name"], set())
        for static in job.get("static_configs", []):
            found.update(static["targets"])
    return targets


def test_prometheus_scrapes_every_http_service_in_its_own_job(services: dict, prometheus: dict) -> None:
    assert prometheus["global"]["scrape_interval"] == "15s"
    names = [job["job_name"] for job in prometheus["scrape_configs"]]
    assert len(names) == len(set(names)), "job names must be unique"
    targets = _scrape_targets(prometheus)
    for name in HTTP_SERVICES:
        assert targets.get(name) == {f"{name}:{_container_port(services[name])}"}, name


def test_prometheus_scrapes_only_compose_services(services: dict, prometheus: dict) -> None:
    # A renamed or removed service must not leave a target that can never be up.
    for job, targets in _scrape_targets(prometheus).items():
        for target in targets:
            assert target.rpartition(":")[0] in services, f"{job}: {target}"


def _prometheus_config_path(prom: dict[str, Any]) -> str:
    config = "/etc/prometheus/prometheus.yml"
    for arg in prom.get("command") or []:
        if arg.startswith("--config.file="):
            config = arg.partition("=")[2]
    return config


def test_prometheus_service_loads_this_config_on_loopback(services: dict) -> None:
    prom = services["prometheus"]
    host = _host_path(prom, _prometheus_config_path(prom))
    assert host == PROMETHEUS.resolve(), "deploy/prometheus/prometheus.yml is not where Prometheus reads its config"
    assert (LOOPBACK, 9090, 9090) in _published(prom)


def test_prometheus_finds_the_rule_files_inside_its_mount(services: dict, prometheus: dict) -> None:
    prom = services["prometheus"]
    config_dir = PurePosixPath(_prometheus_config_path(prom)).parent
    rule_files = prometheus.get("rule_files") or []
    assert rule_files, "the alert rules are not loaded"
    for rule_file in rule_files:
        inside = rule_file if rule_file.startswith("/") else str(config_dir / rule_file)
        host = _host_path(prom, inside)
        assert host is not None and host.is_file(), f"{rule_file} is not mounted into the container"
        assert host.is_relative_to(PROMETHEUS.parent.resolve()), rule_file


# --------------------------------------------------------------------------
# Grafana
# --------------------------------------------------------------------------


def test_grafana_is_pinned_and_published_on_loopback_after_prometheus(services: dict) -> None:
    grafana = services["grafana"]
    repository, _, tag = grafana["image"].rpartition(":")
    assert repository == "grafana/grafana-oss" and re.fullmatch(r"\d+\.\d+\.\d+", tag), grafana["image"]
    assert (LOOPBACK, 3000, 3000) in _published(grafana)
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"
    # The admin password comes from the environment, with a development default.
    assert _env(grafana)["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD")


def test_grafana_provisioning_is_mounted_and_points_at_compose_prometheus(services: dict) -> None:
    grafana = services["grafana"]
    provisioning = _host_path(grafana, "/etc/grafana/provisioning")
    assert provisioning == (GRAFANA / "provisioning").resolve()
    datasources = _load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    url = urlsplit(datasources[0]["url"])
    assert url.hostname == "prometheus" and url.hostname in services
    assert url.port == 9090 and (LOOPBACK, 9090, url.port) in _published(services["prometheus"])


def test_grafana_dashboard_provider_reads_the_mounted_dashboards(services: dict) -> None:
    grafana = services["grafana"]
    providers = _load_yaml(GRAFANA / "provisioning" / "dashboards" / "vanda.yml")["providers"]
    for provider in providers:
        path = provider["options"]["path"]
        assert _host_path(grafana, path) == (GRAFANA / "dashboards").resolve(), path
    home = _env(grafana).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        host = _host_path(grafana, home)
        assert host is not None and host.is_file(), home


# --------------------------------------------------------------------------
# the image
# --------------------------------------------------------------------------


def test_dockerfile_builds_on_python_3_11_or_newer() -> None:
    stages = _stages()
    assert len(stages) >= 2, "expected a builder stage and a runtime stage"
    for stage in stages:
        version = _python_version(stage["image"])
        if version is not None:
            assert version >= (3, 11), stage["image"]
    # The project requires Python 3.11+; the image that runs it must have it.
    assert _python_version(stages[-1]["image"]) is not None, stages[-1]["image"]


@pytest.mark.parametrize("target", [*BUILT, None])
def test_every_image_runs_vanda_as_a_non_root_user(target: str | None) -> None:
    # None: the default target, built when no --target is given.
    stage = _stage(target or _stages()[-1]["name"])
    user = _last(stage, "USER")
    assert user is not None, "the image must switch to an unprivileged user"
    assert user.split(":")[0] not in {"root", "0"}
    entrypoint = _last(stage, "ENTRYPOINT")
    assert entrypoint is not None and _exec_form(entrypoint) == ["vanda"]


@pytest.mark.parametrize("name", HTTP_SERVICES)
def test_service_images_health_check_liveness_on_the_port_they_serve(name: str, services: dict) -> None:
    stage = _stage(name)
    check = _last(stage, "HEALTHCHECK")
    assert check is not None and check.split()[0] != "NONE", name
    port = _container_port(services[name])
    assert f"127.0.0.1:{port}/healthz" in check, name
    assert f"EXPOSE {port}" in {f"{k} {a}" for k, a in stage["instructions"]}, name


def test_migrate_image_has_no_health_check_to_fail() -> None:
    check = _last(_stage("migrate"), "HEALTHCHECK")
    assert check is None or check.split()[0] == "NONE"


def test_service_images_share_one_runtime_stage() -> None:
    # One base to patch: every deployable target descends from the same runtime stage.
    roots = set()
    for name in BUILT:
        stage = _stage(name)
        by_name = {s["name"]: s for s in _stages() if s["name"]}
        while stage["parent"] not in (None, "runtime"):
            stage = by_name[stage["parent"]]
        roots.add(stage["parent"])
    assert roots == {"runtime"}


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".vanda"} <= patterns
