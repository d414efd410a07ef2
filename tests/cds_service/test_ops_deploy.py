"""The deployment files (no Docker engine here): they parse and agree with the code and README.

docker-compose.yml, the Dockerfile, deploy/nginx/nginx.conf and the Kubernetes manifests in
deploy/k8s must name the right ports, environment (every HER2CDS_ variable a real, valid
setting), health paths, and the same start command as the README.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from cds_service.config import Config, from_env
from tests.conftest import ROOT

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
NGINX = ROOT / "deploy" / "nginx" / "nginx.conf"
K8S = ROOT / "deploy" / "k8s"
CONFIG_VARS = {"HER2CDS_" + f.name.upper() for f in fields(Config) if f.name != "extra"}
EXTRA_VARS = {"PROMETHEUS_MULTIPROC_DIR"}
_DEFAULT = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def expand(value: Any) -> str:
    """Compose interpolation with every variable unset: ${VAR:-default} -> default."""
    return _DEFAULT.sub(lambda m: m.group(2) or "", str(value))


def readme_command() -> list[str]:
    """The serve command of the README's quick start, as argv without the venv path."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    for block in blocks:
        for line in block.splitlines():
            for part in line.split("&&"):
                argv = shlex.split(part, comments=True)
                if argv and Path(argv[0]).name == "her2-cds" and argv[1:2] == ["serve"]:
                    return [Path(argv[0]).name, *argv[1:]]
    raise AssertionError("no `her2-cds serve` command in the README's shell blocks")


# --- docker-compose.yml --------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return data


def test_compose_runs_replicas_of_the_image_with_a_valid_configuration(
    compose: dict[str, Any],
) -> None:
    svc = compose["services"]["her2cds"]
    assert svc["build"] == "."
    env = {k: expand(v) for k, v in svc["environment"].items()}
    assert set(env) - EXTRA_VARS <= CONFIG_VARS, "a HER2CDS_ variable the service does not read"
    cfg = from_env(env)  # raises, naming the variable, if a default is invalid
    assert cfg.host == "0.0.0.0"
    assert cfg.database_url.startswith("postgresql+psycopg://")
    assert "@db:5432/" in cfg.database_url
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp")
    assert "/tmp" in svc["tmpfs"]  # writable even with read_only: true
    assert str(cfg.port) in svc["expose"]
    assert "ports" not in svc  # replicas cannot share a host port: nginx publishes
    assert int(expand(svc["deploy"]["replicas"])) >= 2
    assert svc["depends_on"]["db"]["condition"] == "service_healthy"
    probe = " ".join(svc["healthcheck"]["test"])
    assert f"http://127.0.0.1:{cfg.port}/readyz" in probe
    assert int(str(svc["stop_grace_period"]).rstrip("s")) > cfg.graceful_timeout


def test_compose_postgres_matches_the_service_url(compose: dict[str, Any]) -> None:
    db = compose["services"]["db"]
    assert db["image"].startswith("postgres:15")
    assert "pg_isready" in db["healthcheck"]["test"]
    url = expand(compose["services"]["her2cds"]["environment"]["HER2CDS_DATABASE_URL"])
    m = re.match(r"postgresql\+psycopg://([^:]+):([^@]+)@db:5432/([^?]+)", url)
    assert m, url
    denv = {k: expand(v) for k, v in db["environment"].items()}
    assert (denv["POSTGRES_USER"], denv["POSTGRES_PASSWORD"], denv["POSTGRES_DB"]) == m.groups()
    assert any(v.endswith(":/var/lib/postgresql/data") for v in db["volumes"])


def test_compose_nginx_fronts_the_replicas(compose: dict[str, Any]) -> None:
    nginx = compose["services"]["nginx"]
    mounts = {v.split(":")[1]: ROOT / v.split(":")[0] for v in nginx["volumes"]}
    assert mounts["/etc/nginx/nginx.conf"] == ROOT / "deploy/nginx/nginx.conf"
    assert nginx["depends_on"]["her2cds"]["condition"] == "service_healthy"
    container_port = expand(nginx["ports"][0]).rsplit(":", 1)[1]
    conf = NGINX.read_text(encoding="utf-8")
    assert re.search(rf"^\s*listen {container_port};", conf, flags=re.M)
    port = from_env(
        {"HER2CDS_PORT": expand(compose["services"]["her2cds"]["environment"]["HER2CDS_PORT"])}
    ).port
    assert re.search(rf"server her2cds:{port} resolve", conf)
    assert "127.0.0.1:8080" in " ".join(nginx["healthcheck"]["test"])


def assert_trusted_clients(document: Any, tmp_path: Path) -> None:
    """The service loads it as a trusted-clients file (no key is fetched at load)."""
    from cds_service.security.jwks import load_trusted_clients

    path = tmp_path / "trusted-clients.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    clients = load_trusted_clients(str(path))
    assert clients and all(iss.startswith("https://") for iss in clients)


def test_compose_optional_fhir_server_and_trusted_clients(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    fhir = compose["services"]["fhir"]
    assert fhir["profiles"] == ["fhir"]
    assert "R4" in str(fhir["environment"])
    svc = compose["services"]["her2cds"]
    (volume,) = svc["volumes"]
    host, container, mode = volume.split(":")
    assert (ROOT / host).is_dir() and mode == "ro"
    env = {k: expand(v) for k, v in svc["environment"].items()}
    assert env["HER2CDS_AUTH"] == "required"
    trusted = Path(env["HER2CDS_TRUSTED_CLIENTS"])
    assert trusted.parent == Path(container)
    document = json.loads((ROOT / host / trusted.name).read_text(encoding="utf-8"))
    assert_trusted_clients(document, tmp_path)


def test_nginx_logs_no_query_string_and_hides_metrics() -> None:
    conf = NGINX.read_text(encoding="utf-8")
    log_format = conf[conf.index("log_format") : conf.index("access_log")]
    assert '"path":"$loggable_uri"' in log_format
    assert re.search(r"~\^/timeline/\s+/timeline/<patient_id>;", conf)
    for leaky in (
        "$request ",
        '$request"',
        "$request_uri",
        "$args",
        "$query_string",
        "$http_authorization",
    ):
        assert leaky not in log_format
    assert re.search(r"location = /metrics \{\s*return 404;", conf)
    size = re.search(r"client_max_body_size (\d+)m;", conf)
    assert size and int(size.group(1)) * 1024 * 1024 >= Config().max_body_bytes
    assert conf.count("{") == conf.count("}")


# --- Dockerfile ----------------------------------------------------------------------------


def dockerfile_stages() -> tuple[dict[str, str], list[list[tuple[str, str]]]]:
    """(ARG defaults, stages as lists of (INSTRUCTION, arguments)), continuations joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    args: dict[str, str] = {}
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        op = op.upper()
        if op == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
            continue
        if op == "FROM":
            stages.append([])
        stages[-1].append((op, rest.strip()))
    return args, stages


def test_image_entrypoint_is_the_readme_command() -> None:
    _, stages = dockerfile_stages()
    final = dict(stages[-1])
    assert json.loads(final["ENTRYPOINT"]) == readme_command() == ["her2-cds", "serve"]
    assert "CMD" not in final
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["her2-cds"] == "her2cds_cli.cli:main"


def test_image_is_slim_multi_stage_non_root_without_build_tools() -> None:
    args, stages = dockerfile_stages()
    assert len(stages) >= 2
    base = stages[-1][0][1].split()[0]
    base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
    assert base.startswith("python:") and "slim" in base
    final_runs = " ".join(rest for op, rest in stages[-1] if op == "RUN")
    for tool in ("apt-get", "apk", "gcc", "build-essential", "pip install", "-dev"):
        assert tool not in final_runs
    copies = [rest for op, rest in stages[-1] if op == "COPY"]
    assert copies and all(c.startswith("--from=build") for c in copies)
    user = [rest for op, rest in stages[-1] if op == "USER"][-1]
    assert user.split(":")[0] not in ("0", "root")
    env = " ".join(rest for op, rest in stages[-1] if op == "ENV")
    assert "HER2CDS_HOST=0.0.0.0" in env and "PROMETHEUS_MULTIPROC_DIR=" in env
    port = re.search(r"HER2CDS_PORT=(\d+)", env)
    assert port and dict(stages[-1])["EXPOSE"] == port.group(1)
    assert f"127.0.0.1:{port.group(1)}/healthz" in dict(stages[-1])["HEALTHCHECK"]


# --- Kubernetes ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def k8s() -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            docs[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return docs


def test_kustomization_lists_every_manifest() -> None:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kust["resources"]) == files


def test_k8s_has_every_object(k8s: dict[str, dict[str, Any]]) -> None:
    kinds = {key.split("/")[0] for key in k8s}
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Secret",
        "ConfigMap",
    } <= kinds


def _pod(k8s: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    dep = k8s["Deployment/her2cds"]
    spec = dep["spec"]["template"]["spec"]
    return dep, spec


def test_k8s_deployment_probes_ports_and_image_entrypoint(
    k8s: dict[str, dict[str, Any]],
) -> None:
    dep, spec = _pod(k8s)
    (container,) = spec["containers"]
    assert "command" not in container and "args" not in container  # the image's `her2-cds serve`
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    config = k8s["ConfigMap/her2cds-config"]["data"]
    secrets = k8s["Secret/her2cds-secrets"]["stringData"]
    env = dict(config)
    for item in container["env"]:
        ref = item["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "her2cds-secrets"
        env[item["name"]] = secrets[ref["key"]]
    assert set(env) - EXTRA_VARS <= CONFIG_VARS
    cfg = from_env(env)
    assert ports["http"] == cfg.port and cfg.host == "0.0.0.0"
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert spec["terminationGracePeriodSeconds"] > cfg.graceful_timeout + pre_stop
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/tmp" in mounts and env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_k8s_trusted_clients_secret_is_mounted_where_the_config_points(
    k8s: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    _, spec = _pod(k8s)
    (container,) = spec["containers"]
    path = Path(k8s["ConfigMap/her2cds-config"]["data"]["HER2CDS_TRUSTED_CLIENTS"])
    volumes = {v["name"]: v for v in spec["volumes"]}
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(path.parent))
    assert mount["readOnly"] is True
    secret_name = volumes[mount["name"]]["secret"]["secretName"]
    secret = k8s[f"Secret/{secret_name}"]
    assert path.name in secret["stringData"]
    assert_trusted_clients(json.loads(secret["stringData"][path.name]), tmp_path)


def test_k8s_service_hpa_and_pdb_select_the_pods(k8s: dict[str, dict[str, Any]]) -> None:
    dep, _ = _pod(k8s)
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    svc = k8s["Service/her2cds"]
    assert svc["spec"]["selector"].items() <= labels.items()
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    pdb = k8s["PodDisruptionBudget/her2cds"]
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = k8s["HorizontalPodAutoscaler/her2cds"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", dep["metadata"]["name"])
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    # the PDB must leave room to evict: more replicas than it keeps
    assert pdb["spec"]["maxUnavailable"] >= 1


def test_readme_has_one_configuration_table_with_every_setting() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    documented = re.findall(r"^\| `([A-Z0-9_]+)` \|", text, flags=re.M)
    assert len(documented) == len(set(documented)), "a variable documented twice"
    internal = {"HER2CDS_TESTING"}
    assert CONFIG_VARS - internal <= set(documented)
    assert set(documented) >= EXTRA_VARS


def test_docker_context_keeps_what_the_package_needs_and_drops_tests_and_secrets() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {"tests", "deploy", ".git", "*.db"} <= ignored
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    for pattern in packages:
        assert pattern.rstrip("*") not in ignored
    assert pyproject["project"]["readme"] not in ignored  # needed to build the wheel


# --- Prometheus ----------------------------------------------------------------------------


def _metric_names() -> set[str]:
    from prometheus_client.metrics import MetricWrapperBase

    from cds_service.observability import metrics

    return {m._name for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)}


def test_alert_rules_use_metrics_that_exist() -> None:
    doc = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text(encoding="utf-8"))
    rules = [r for group in doc["groups"] for r in group["rules"]]
    assert len(rules) >= 5
    known = _metric_names()
    used: set[str] = set()
    for rule in rules:
        assert rule["alert"] and rule["annotations"]["summary"] and rule["labels"]["severity"]
        for name in re.findall(r"\b(her2cds_[a-z_]+)", rule["expr"]):
            base = re.sub(r"_(total|bucket|count|sum|created)$", "", name)
            assert base in known, f"{rule['alert']}: no metric {name}"
            used.add(base)
        labels = re.findall(r'endpoint="([^"]+)"', rule["expr"])
        assert set(labels) <= {"health.readyz", "hooks.call_service"}
    assert {"her2cds_request_duration_seconds", "her2cds_fhir_errors", "her2cds_feedback"} <= used


def test_prometheus_scrapes_every_replica(compose: dict[str, Any]) -> None:
    prom = compose["services"]["prometheus"]
    assert prom["profiles"] == ["monitoring"]
    mounts = {v.split(":")[1]: ROOT / v.split(":")[0] for v in prom["volumes"]}
    assert all(path.is_file() for path in mounts.values())
    conf = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text(encoding="utf-8"))
    assert set(conf["rule_files"]) <= set(mounts)
    (job,) = conf["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    (sd,) = job["dns_sd_configs"]
    port = expand(compose["services"]["her2cds"]["environment"]["HER2CDS_PORT"])
    assert sd["names"] == ["her2cds"] and str(sd["port"]) == port
