"""The Kubernetes manifests in deploy/k8s, checked without a cluster.

What is validated: every manifest against the Kubernetes OpenAPI JSON schemas in
strict mode (no unknown fields), for the oldest and newest Kubernetes minor this
suite claims, using the schemas the kubernetes-validate package ships (offline); and
the wiring the schemas cannot see: probes, secrets, settings names, labels and
selectors, the restricted Pod Security profile, images, the kustomization.

What is not: that kustomize renders the folder (no kustomize binary here), that a
cluster admits it, or that the pods start. Outside CI a machine without
kubernetes-validate skips the schema check; in CI (CI=true) it fails instead.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from services.intake.config import IntakeSettings
from services.reporting.config import ReportingSettings
from services.sanctions.config import SanctionsSettings
from vanda.runtime.auth import AuthSettings
from vanda.runtime.settings import CommonSettings
from vanda.runtime.transport import TransportSettings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SERVICES = ("intake", "sanctions", "reporting")
CONSUMERS = ("sanctions", "reporting")  # their replicas share a topic's partitions
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
PORT = 8000
SHARED_SETTINGS = (CommonSettings, TransportSettings)
# The settings each service reads besides the shared ones.
SERVICE_SETTINGS: dict[str, tuple[type[BaseSettings], ...]] = {
    "intake": (IntakeSettings, AuthSettings),
    "sanctions": (SanctionsSettings, AuthSettings),
    "reporting": (ReportingSettings,),
}


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    return _documents(K8S / "kustomization.yaml")[0]


def _env_file(path: Path) -> dict[str, str]:
    """An env file as kustomize reads it: KEY=value a line; blank lines and # comments skipped."""
    lines = [line.lstrip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    settings = [line for line in lines if not line.startswith("#")]
    # A line without "=" would take its value from the shell of whoever runs kustomize.
    assert all("=" in line for line in settings), [line for line in settings if "=" not in line]
    return dict(line.split("=", 1) for line in settings)


def _generated(kustomization: dict[str, Any]) -> list[dict[str, Any]]:
    """The ConfigMaps kustomize makes (under their plain names: it adds the hash, and rewrites
    every reference to them to match)."""
    return [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]},
             "data": {k: v for env in generator["envs"] for k, v in _env_file(K8S / env).items()}}
            for generator in kustomization.get("configMapGenerator", [])]


@pytest.fixture(scope="module")
def applied(kustomization: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object `kubectl apply -k deploy/k8s` creates."""
    return [doc for name in kustomization["resources"] for doc in _documents(K8S / name)] + _generated(kustomization)


def test_the_settings_are_generated_so_that_changing_one_rolls_the_pods(kustomization: dict[str, Any]) -> None:
    [generator] = kustomization["configMapGenerator"]
    assert generator["name"] == "vanda-config" and generator.get("options", {}).get("disableNameSuffixHash") is None
    settings = _env_file(K8S / generator["envs"][0])
    # kustomize keeps quotes as part of a value: TOPIC_PARTITIONS="6" would not be a number.
    assert not [k for k, v in settings.items() if v.startswith(('"', "'")) or v != v.strip()], settings
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", k) for k in settings)


@pytest.fixture(scope="module")
def secrets() -> dict[str, set[str]]:
    """The secrets operators create by hand, by name, with their keys (from secret.example.yaml)."""
    docs = _documents(K8S / "secret.example.yaml")
    assert {doc["kind"] for doc in docs} == {"Secret"}
    return {doc["metadata"]["name"]: set(doc.get("stringData") or doc.get("data") or {}) for doc in docs}


def _one(applied: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in applied if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _pod(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = _pod(workload)["containers"]
    return container


def _containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    """Every container a workload runs (the migrate Job runs one per service)."""
    return _pod(workload)["containers"]


def _env_names(settings: type[BaseSettings], secret: bool | None = None) -> set[str]:
    """Environment variable names of a settings class (only its secrets, or only the rest)."""
    prefix = settings.model_config.get("env_prefix", "")
    names = set()
    for field, info in settings.model_fields.items():
        is_secret = "SecretStr" in repr(info.annotation) or field == "database_url"
        if secret is None or secret == is_secret:
            names.add(f"{prefix}{field}".upper())
    return names


def _all_settings() -> set[type[BaseSettings]]:
    return {*SHARED_SETTINGS, *(s for group in SERVICE_SETTINGS.values() for s in group)}


SECRET_SETTINGS = {name for settings in _all_settings() for name in _env_names(settings, secret=True)}


def _settings_env_names() -> set[str]:
    return {name for settings in _all_settings() for name in _env_names(settings)}


def _needed_secrets(settings: type[BaseSettings]) -> set[str]:
    """Secrets a service cannot run without: required ones, and any whose default is a development value."""
    prefix = settings.model_config.get("env_prefix", "")
    return {f"{prefix}{field}".upper() for field, info in settings.model_fields.items()
            if isinstance(info.default, SecretStr) or (info.is_required() and "SecretStr" in repr(info.annotation))}


# --------------------------------------------------------------------------
# schemas and the kustomization
# --------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_matches_the_kubernetes_schema_strictly(version: str) -> None:
    try:
        import kubernetes_validate
    except ImportError:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("kubernetes-validate is missing: it is a test dependency; CI must not skip this check")
        pytest.skip("kubernetes-validate is not installed")
    checked = 0
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in _documents(path):
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{path.name}: {doc['kind']} {doc['metadata']['name']}: {error.message}")
            checked += 1
    assert checked >= 14


def test_schema_check_rejects_a_misspelt_probe() -> None:
    # Guards the check above against passing vacuously.
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    deployment = _documents(K8S / "intake.yaml")[0]
    probe = _container(deployment)["readinessProbe"]
    probe["httpGett"] = probe.pop("httpGet")
    with pytest.raises(kubernetes_validate.ValidationError, match="httpGett"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_kustomization_applies_every_manifest_but_the_secret_example(kustomization: dict[str, Any]) -> None:
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk - {"secret.example.yaml"}, "secrets never go through git"
    namespace = _documents(K8S / "namespace.yaml")[0]
    assert kustomization["namespace"] == namespace["metadata"]["name"]


def test_kustomization_names_every_image_the_manifests_use(kustomization: dict[str, Any],
                                                           applied: list[dict[str, Any]]) -> None:
    used = {c["image"].rpartition(":")[0] for d in applied if d["kind"] in {"Deployment", "Job"}
            for c in _containers(d)}
    assert used == {image["name"] for image in kustomization["images"]}
    assert used == {f"vanda-{name}" for name in (*SERVICES, "migrate")}


# --------------------------------------------------------------------------
# the three services
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", SERVICES)
def test_service_runs_its_own_image_and_command_on_the_probed_port(name: str, applied: list) -> None:
    container = _container(_one(applied, "Deployment", name))
    assert container["image"].startswith(f"vanda-{name}:")
    assert container["args"] == ["serve", name, "--host", "0.0.0.0", "--port", str(PORT)]
    assert {"name": "http", "containerPort": PORT, "protocol": "TCP"} in container["ports"]


@pytest.mark.parametrize("name", SERVICES)
def test_readiness_is_the_http_apis_and_liveness_is_healthz(name: str, applied: list) -> None:
    container = _container(_one(applied, "Deployment", name))
    # PostgreSQL alone: Kafka down must not take away an API that stores through the outbox.
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz/http", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    # A database outage makes a pod unready, never restarts it: liveness must not be /readyz.
    startup = container.get("startupProbe", {}).get("httpGet", {})
    assert startup.get("path", "/healthz") == "/healthz"


@pytest.mark.parametrize("name", SERVICES)
def test_start_up_may_wait_for_postgresql_then_kafka_before_the_probe_gives_up(name: str, applied: list) -> None:
    # The service's own waits end first, so the pod exits with a log line saying what it waited for.
    probe = _container(_one(applied, "Deployment", name))["startupProbe"]
    wait = CommonSettings.model_fields["startup_wait_s"].default
    assert probe["periodSeconds"] * probe["failureThreshold"] > 2 * wait


@pytest.mark.parametrize("name", SERVICES)
def test_service_routes_to_its_pods_and_scrape_annotations_match(name: str, applied: list) -> None:
    deployment = _one(applied, "Deployment", name)
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    service = _one(applied, "Service", name)
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    budget = _one(applied, "PodDisruptionBudget", name)
    assert budget["spec"]["selector"]["matchLabels"] == selector
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(PORT) and annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("name", SERVICES)
def test_rollouts_keep_a_ready_pod_and_outlast_the_drain(name: str, applied: list) -> None:
    deployment = _one(applied, "Deployment", name)
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    # After a 5 s pause (preStop), `vanda serve` drains requests for 20 s on SIGTERM, then
    # stops its consumers (15 s) and relay (10 s).
    assert _pod(deployment)["terminationGracePeriodSeconds"] >= 5 + 20 + 15 + 10
    assert _container(deployment)["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]


# --------------------------------------------------------------------------
# configuration and secrets
# --------------------------------------------------------------------------


def test_config_map_holds_only_known_settings_and_no_secret(applied: list) -> None:
    data = _one(applied, "ConfigMap", "vanda-config")["data"]
    unknown = set(data) - _settings_env_names()
    assert not unknown, f"no setting reads {sorted(unknown)}: a typo?"
    assert not set(data) & SECRET_SETTINGS


def test_secrets_come_from_secret_refs_that_the_example_defines(applied: list, secrets: dict) -> None:
    for workload, container in ((d, c) for d in applied if d["kind"] in {"Deployment", "Job"}
                                for c in [*_pod(d).get("initContainers", []), *_containers(d)]):
        env = {e["name"]: e for e in container.get("env", [])}
        assert "DATABASE_URL" in env, workload["metadata"]["name"]
        for name in SECRET_SETTINGS & set(env):
            ref = env[name]["valueFrom"]["secretKeyRef"]
            assert ref["key"] in secrets[ref["name"]], f"{ref} is not in secret.example.yaml"
        assert not any("value" in e and e["name"] in SECRET_SETTINGS for e in env.values())


def test_only_intake_gets_the_pseudonym_and_identity_keys(applied: list) -> None:
    for workload, container in ((d, c) for d in applied if d["kind"] in {"Deployment", "Job"}
                                for c in _containers(d)):
        names = {e["name"] for e in container.get("env", [])}
        for key in ("INTAKE_PSEUDONYM_KEY", "INTAKE_IDENTITY_KEY"):
            assert (key in names) == (workload["metadata"]["name"] == "intake"), (workload["metadata"]["name"], key)


@pytest.mark.parametrize("name", SERVICES)
def test_every_secret_a_service_needs_comes_from_a_secret(name: str, applied: list) -> None:
    env = {e["name"]: e for e in _container(_one(applied, "Deployment", name))["env"]}
    needed = {secret for settings in SERVICE_SETTINGS[name] for secret in _needed_secrets(settings)}
    assert name != "intake" or {"INTAKE_PSEUDONYM_KEY", "INTAKE_IDENTITY_KEY"} <= needed
    for secret in needed:
        assert secret in env, f"{name} cannot start without {secret}"
        assert not env[secret]["valueFrom"]["secretKeyRef"].get("optional"), secret


def test_kafka_is_encrypted_and_authenticated_by_default(applied: list) -> None:
    data = _one(applied, "ConfigMap", "vanda-config")["data"]
    assert data["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    for name in SERVICES:
        env = {e["name"] for e in _container(_one(applied, "Deployment", name))["env"]}
        assert {"KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"} <= env, name


def test_services_read_the_config_map(applied: list) -> None:
    for name in SERVICES:
        sources = _container(_one(applied, "Deployment", name))["envFrom"]
        assert {"configMapRef": {"name": "vanda-config"}} in sources, name


def test_partitions_leave_every_consumer_replica_work(applied: list) -> None:
    # Consumers of one group beyond the partition count sit idle, and each replica runs several.
    data = _one(applied, "ConfigMap", "vanda-config")["data"]
    per_replica = int(data.get("CONSUMERS_PER_SUBSCRIPTION", CommonSettings().consumers_per_subscription))
    for name in CONSUMERS:
        replicas = _one(applied, "Deployment", name)["spec"]["replicas"]
        assert replicas * per_replica <= int(data["TOPIC_PARTITIONS"]), name


def test_every_pod_verifies_tls_against_the_mounted_ca(applied: list, secrets: dict) -> None:
    # Without a CA to check against, verify-full fails: libpq looks for ~/.postgresql/root.crt,
    # which the image lacks, so the migrations (and every pod behind them) would not start.
    urls = [doc["stringData"]["DATABASE_URL"] for doc in _documents(K8S / "secret.example.yaml")
            if doc["metadata"]["name"].startswith("vanda-database-")]
    cafile = _one(applied, "ConfigMap", "vanda-config")["data"]["KAFKA_SSL_CAFILE"]
    assert len(urls) == len(SERVICES)
    assert all("sslmode=verify-full" in url and f"sslrootcert={cafile}" in url for url in urls)
    assert "ca.crt" in secrets["vanda-ca"]
    for workload in _workloads(applied):
        pod = _pod(workload)
        volume = next(v["name"] for v in pod["volumes"] if v.get("secret", {}).get("secretName") == "vanda-ca")
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            mounts = {m["mountPath"]: m for m in container["volumeMounts"] if m["name"] == volume}
            where = cafile.rsplit("/", 1)[0]
            who = (workload["metadata"]["name"], container["name"])
            assert where in mounts and mounts[where]["readOnly"] is True, who


# --------------------------------------------------------------------------
# the pods: restricted Pod Security profile, resources
# --------------------------------------------------------------------------


def _workloads(applied: list) -> list[dict[str, Any]]:
    return [d for d in applied if d["kind"] in {"Deployment", "Job"}]


def test_the_namespace_enforces_the_restricted_pod_security_profile(applied: list) -> None:
    namespace = next(d for d in applied if d["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_every_pod_runs_as_a_non_root_user_without_privileges(applied: list) -> None:
    for workload in _workloads(applied):
        name = workload["metadata"]["name"]
        pod = _pod(workload)["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0, name
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in (c["securityContext"] for c in _containers(workload)):
            assert container["allowPrivilegeEscalation"] is False, name
            assert container["capabilities"]["drop"] == ["ALL"], name
            assert container["readOnlyRootFilesystem"] is True, name
        assert _pod(workload)["automountServiceAccountToken"] is False, name


def test_every_container_has_requests_and_limits(applied: list) -> None:
    for workload in _workloads(applied):
        for resources in (c["resources"] for c in _containers(workload)):
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[bound]), workload["metadata"]["name"]


@pytest.mark.parametrize("name", SERVICES)
def test_every_pod_migrates_before_its_service_starts(name: str, applied: list) -> None:
    # A consumer started before its tables exist would dead-letter what it cannot store.
    deployment = _one(applied, "Deployment", name)
    (init,) = _pod(deployment)["initContainers"]
    # Its own schema only, as its own database user: the service's own secret.
    assert init["args"] == ["migrate", "--service", name] and init["image"] == _container(deployment)["image"]
    assert {e["name"] for e in init["env"]} == {"DATABASE_URL"}, "migrations need the database, nothing else"
    assert _database_secret(init) == _database_secret(_container(deployment)) == f"vanda-database-{name}"
    assert init["securityContext"] == _container(deployment)["securityContext"]


def _database_secret(container: dict[str, Any]) -> str:
    (url,) = [e for e in container["env"] if e["name"] == "DATABASE_URL"]
    return url["valueFrom"]["secretKeyRef"]["name"]


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_has_its_own_kafka_user(name: str, applied: list) -> None:
    # One user each, so that the broker's ACLs give each service only its own topics.
    env = {e["name"]: e for e in _container(_one(applied, "Deployment", name))["env"]}
    for setting in ("KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"):
        assert env[setting]["valueFrom"]["secretKeyRef"]["name"] == f"vanda-kafka-{name}", setting


def test_migrate_job_runs_the_migrations_once_to_completion(applied: list) -> None:
    job = _one(applied, "Job", "vanda-migrate")
    # Each schema by its own service's database user.
    assert sorted((c["args"], _database_secret(c)) for c in _containers(job)) == sorted(
        (["migrate", "--service", name], f"vanda-database-{name}") for name in SERVICES)
    assert _pod(job)["restartPolicy"] in {"OnFailure", "Never"}
    assert job["spec"]["backoffLimit"] >= 1


@pytest.mark.parametrize("name", SERVICES)
def test_a_budget_lets_unready_pods_be_drained(name: str, applied: list) -> None:
    # Every pod unready at once (PostgreSQL away) would otherwise leave no eviction allowed.
    assert _one(applied, "PodDisruptionBudget", name)["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
