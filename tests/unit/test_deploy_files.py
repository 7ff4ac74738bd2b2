"""The deployment files parse and agree with the code: Dockerfile, compose, Kubernetes, Prometheus, Grafana.

Pure: it reads files, imports modules and runs `sh` on the image's entrypoint script; no network, no
Docker. What it checks against comes from the code wherever the code says it: the processes and their
ports from the service settings, the topics, consumers and groups from `schemas/topics.py`, and the
metric names from the prometheus_client declarations in `leadflow/` and `services/`.

The Kubernetes checks run on the base and on every overlay, rendered by a small merge of the
overlay's patches written here; `kubectl kustomize` (when kubectl is on PATH) renders each overlay
for real, and its output must agree with that merge and pass the same checks.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import shutil
import subprocess
import tomllib
from functools import cache
from pathlib import Path

import pytest
import yaml

from leadflow.runtime.settings import PersonalDataSettings, WorkerSettings
from schemas.topics import TOPICS, consumer_group

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"
K8S = ROOT / "deploy" / "k8s"
MONITORING = ROOT / "deploy" / "monitoring"
DASHBOARDS = MONITORING / "grafana" / "dashboards"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))

# Series Prometheus makes itself, which rules may use although no code exports them.
PROMETHEUS_SERIES = {"up"}
# Metrics the alert rules may already name, only in groups whose name ends in "-pending", because
# the code does not export them yet (docs/operations.md, "Pending").
PENDING_METRICS: set[str] = set()

# Environment variables that hold secrets; compose may only interpolate them, never spell them.
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|TOKEN|FERNET|API_KEYS|_KEY$)")


# ---- what the code says ---------------------------------------------------------------------------


def _consumers() -> dict[str, list]:
    """service -> the registry's topics it consumes."""
    out: dict[str, list] = {}
    for spec in TOPICS:
        for consumer in spec.consumers:
            out.setdefault(consumer, []).append(spec)
    return out


CONSUMERS = _consumers()
WORKERS = sorted(CONSUMERS)  # every consuming service is a stream worker
PROCESSES = [*WORKERS, "api"]  # "api" runs services.gateway


def _settings_class(process: str):
    module = importlib.import_module(f"services.{'gateway' if process == 'api' else process}.settings")
    base = PersonalDataSettings if process == "api" else WorkerSettings
    classes = [
        c for c in vars(module).values()
        if isinstance(c, type) and issubclass(c, base) and c.__module__ == module.__name__
    ]
    assert len(classes) == 1, f"services.{process}.settings should define one settings class"
    return classes[0]


def default_port(process: str) -> int:
    fields = _settings_class(process).model_fields
    return fields["api_port" if process == "api" else "web_port"].default


def handles_personal_data(process: str) -> bool:
    return issubclass(_settings_class(process), PersonalDataSettings)


def test_every_process_has_a_main_module():
    for process in PROCESSES:
        package = "gateway" if process == "api" else process
        assert (ROOT / "services" / package / "__main__.py").is_file(), process


# ---- metric names, from the prometheus_client declarations ----------------------------------------

METRIC_CLASSES = {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum", "GaugeMetricFamily"}


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _declarations(path: Path) -> tuple[dict[str, str], list[str]]:
    """(full metric name -> class) declared in one module, and the declarations whose name is not a literal."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    classes: dict[str, str] = {}  # local name -> prometheus_client class
    modules: set[str] = set()  # local names of the prometheus_client module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "prometheus_client":
            classes.update({a.asname or a.name: a.name for a in node.names if a.name in METRIC_CLASSES})
        elif isinstance(node, ast.Import):
            modules.update(a.asname or a.name for a in node.names if a.name == "prometheus_client")
    found: dict[str, str] = {}
    unresolved: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in classes:
            kind = classes[func.id]
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in modules \
                and func.attr in METRIC_CLASSES:
            kind = func.attr
        else:
            continue
        keywords = {k.arg: k.value for k in node.keywords}
        name = _literal(node.args[0] if node.args else keywords.get("name"))
        if name is None:
            unresolved.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            continue
        parts = [_literal(keywords.get("namespace")), _literal(keywords.get("subsystem")), name]
        full = "_".join(p for p in parts if p)
        unit = _literal(keywords.get("unit"))
        if unit and not full.endswith("_" + unit):
            full += "_" + unit
        found[full] = kind
    return found, unresolved


@cache
def declared_metrics() -> dict[str, str]:
    found: dict[str, str] = {}
    for package in ("leadflow", "services"):
        for path in sorted((ROOT / package).rglob("*.py")):
            found.update(_declarations(path)[0])
    return found


def series_names(name: str, kind: str) -> set[str]:
    """The sample names prometheus_client exposes for one metric."""
    if kind == "Counter":
        base = name.removesuffix("_total")
        return {base + "_total", base + "_created"}
    if kind == "Histogram":
        return {name + s for s in ("_bucket", "_count", "_sum", "_created")}
    if kind == "Summary":
        return {name, name + "_count", name + "_sum", name + "_created"}
    if kind == "Info":
        return {name + "_info"}
    return {name}


@cache
def exported_series() -> frozenset[str]:
    return frozenset(s for name, kind in declared_metrics().items() for s in series_names(name, kind))


def test_metric_declarations_have_literal_names():
    unresolved = [u for package in ("leadflow", "services") for p in sorted((ROOT / package).rglob("*.py"))
                  for u in _declarations(p)[1]]
    assert not unresolved, f"metric names must be string literals so the deploy checks can see them: {unresolved}"


def test_the_declaration_scan_matches_the_registry():
    """Importing the metric modules registers exactly the leadflow metrics the scan found (same type)."""
    from prometheus_client import REGISTRY

    importlib.import_module("leadflow.runtime.metrics")
    importlib.import_module("services.gateway.app")
    registered = {m.name: m.type for m in REGISTRY.collect() if m.name.startswith("leadflow_")}
    assert registered, "no leadflow metric registered"
    scanned = {
        (name.removesuffix("_total") if kind == "Counter" else name): kind.lower()
        for name, kind in declared_metrics().items()
    }
    missing = {n: t for n, t in registered.items() if scanned.get(n) != t}
    assert not missing, f"registered but not found (or with another type) by the declaration scan: {missing}"
    for required in ("leadflow_events_consumed_total", "leadflow_processing_seconds_bucket",
                     "leadflow_api_requests_total", "leadflow_api_request_seconds_bucket"):
        assert required in exported_series()


# ---- PromQL ---------------------------------------------------------------------------------------

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
                "and", "or", "unless", "atan2", "inf", "nan"}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (Grafana variables allowed) selects."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # string literals
    e = re.sub(r"\{[^{}]*\}", " ", e)  # label matchers
    e = re.sub(r"\[[^\[\]]*\]", " ", e)  # range and subquery windows
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", e)  # label lists
    e = re.sub(r"\boffset\s+-?[\w.$]+|@\s*[\w.()$]+", " ", e)  # offset and @ modifiers
    e = re.sub(r"\$\{[^}]*\}|\$\w+", " ", e)  # Grafana variables
    e = re.sub(r"(?<![\w:])\d+(?:\.\d*)?(?:[eE][+-]?\d+)?", " ", e)  # numbers
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        if e[match.end():].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group(0).lower() not in PROMQL_WORDS:
            names.add(match.group(0))
    return names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (service) (rate(a_total{x="{y}", le="+Inf"}[5m])) / on (s) group_left b', {"a_total", "b"}),
        ("histogram_quantile(0.99, sum by (le) (rate(c_bucket[$__rate_interval]))) > 1e3", {"c_bucket"}),
        ('label_replace(d > 0, "g", "leadflow-$1", "service", "(.+)") unless e offset 1d', {"d", "e"}),
        ('up{job=~"leadflow-.*"} == bool 0 or vector(1)', {"up"}),
    ],
)
def test_promql_metric_names(expr, names):
    assert promql_metric_names(expr) == names


def _check_names(where: str, expr: str, allowed: set[str]) -> None:
    names = promql_metric_names(expr)
    assert names, f"{where}: no metric in {expr!r}"
    unknown = names - allowed
    assert not unknown, f"{where}: {sorted(unknown)} not exported by the code (expr: {expr})"


# ---- Dockerfile -----------------------------------------------------------------------------------


@cache
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8")


def _heredoc(target: str) -> str:
    match = re.search(r'^COPY [^\n]*<<"?(\w+)"?\s+' + re.escape(target) + r"\n(.*?)\n\1$", dockerfile(), re.M | re.S)
    assert match, f"the Dockerfile writes no {target}"
    return match.group(2) + "\n"


def _instructions(name: str) -> list[str]:
    text = re.sub(r"\\\n", " ", re.sub(r"<<\"?(\w+)\"?.*?\n\1$", "", dockerfile(), flags=re.M | re.S))
    return [line.split(None, 1)[1] for line in text.splitlines() if line.split(None, 1)[:1] == [name]]


def test_dockerfile_builds_from_python_311_slim_with_the_lock_and_runs_as_a_user():
    args = dict(a.split("=", 1) for a in _instructions("ARG") if "=" in a)
    bases = [f.split()[0] for f in _instructions("FROM")]
    assert bases, "no FROM"
    images = [re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), base) for base in bases]
    # Python stages on 3.11 slim; the one Node stage only fetches ECharts from npm for the dashboard.
    python = [i for i in images if not i.startswith("node:")]
    assert python and all(i.startswith("python:3.11") and "slim" in i for i in python), images
    assert all("slim" in i for i in images) and len(images) - len(python) <= 1, images
    installs = [r for r in _instructions("RUN") if "pip install" in r]
    assert installs and all("-c requirements.lock" in r for r in installs), installs
    users = _instructions("USER")
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must end as a non-root user"
    assert _instructions("HEALTHCHECK") and _instructions("ENTRYPOINT")


def _dockerignore_excludes(rel: str) -> bool:
    """Docker's rule: the last pattern matching the path (or a parent directory) decides."""
    excluded = False
    parts = rel.split("/")
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, "/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            excluded = not negate
    return excluded


def test_dockerignore_sends_the_sources_and_nothing_private():
    sources = [s for line in _instructions("COPY") if "--from=" not in line for s in line.split()[:-1]
               if not s.startswith("--")]
    assert sources, "no COPY from the build context"
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such path"
        assert not _dockerignore_excludes(source), f"COPY {source} is excluded by .dockerignore"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= set(sources), f"packages not copied into the image: {packages - set(sources)}"
    for path in [*(ROOT / "schemas" / "json").glob("*.json"), ROOT / "services" / "identity" / "__main__.py"]:
        assert not _dockerignore_excludes(str(path.relative_to(ROOT))), path
    for private in (".venv/bin/python", "var/leadflow.env", "deploy/compose/.env", ".git/config", "tests/conftest.py",
                    "leadflow/__pycache__/cli.cpython-311.pyc"):
        assert _dockerignore_excludes(private), f"{private} would be sent to the Docker build"


def test_image_entrypoint_starts_each_process_and_notes_its_health_url(tmp_path):
    script = tmp_path / "entrypoint"
    script.write_text(_heredoc("/usr/local/bin/leadflow-entrypoint"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for stub in ("python", "leadflow"):
        (bin_dir / stub).write_text(f'#!/bin/sh\necho {stub} "$@"\n')
        (bin_dir / stub).chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "TMPDIR": str(tmp_path)}

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(["sh", str(script), *args], env={**env, **extra}, capture_output=True, text=True,
                              timeout=10)

    for process in PROCESSES:
        done = run(process)
        module = "services.gateway" if process == "api" else f"services.{process}"
        assert (done.returncode, done.stdout.strip()) == (0, f"python -m {module}"), done.stderr
        url = (tmp_path / "leadflow-healthz-url").read_text().strip()
        assert url == f"http://127.0.0.1:{default_port(process)}/healthz", process
    run("identity", "--web-port", "6105")
    assert (tmp_path / "leadflow-healthz-url").read_text().strip() == "http://127.0.0.1:6105/healthz"
    run("leads", LEADFLOW_WEB_PORT="7000")
    assert (tmp_path / "leadflow-healthz-url").read_text().strip() == "http://127.0.0.1:7000/healthz"
    assert run("leadflow", "simulate", "--rate", "5").stdout.strip() == "leadflow simulate --rate 5"
    assert run("nonsense").returncode == 64
    assert run().returncode == 64
    compile(_heredoc("/usr/local/bin/leadflow-healthcheck"), "leadflow-healthcheck", "exec")


# ---- compose --------------------------------------------------------------------------------------


@cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def compose_processes() -> dict[str, str]:
    """compose service -> the leadflow process it runs (services built from the Dockerfile)."""
    return {name: svc["command"][0] for name, svc in compose()["services"].items() if "build" in svc}


def compose_env(service: str) -> dict[str, str]:
    env = compose()["services"][service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def test_compose_runs_the_whole_stack():
    services = compose()["services"]
    processes = compose_processes()
    for process in PROCESSES:
        assert process in processes.values(), f"no compose service runs {process}"
    assert list(processes.values()).count("identity") >= 2, "two identity workers always run"
    kafka = [n for n, s in services.items() if s.get("image", "").startswith("apache/kafka:")]
    assert len(kafka) == 3, kafka
    mongo = [n for n, s in services.items() if s.get("image", "").startswith("mongo:7")]
    assert len(mongo) == 1, mongo
    assert any(s.get("image", "").startswith("prom/prometheus") for s in services.values())
    assert any(s.get("image", "").startswith("grafana/grafana") for s in services.values())


def test_every_compose_service_has_a_healthcheck_and_a_restart_policy():
    for name, svc in compose()["services"].items():
        check = svc.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name}: no healthcheck"
        assert svc.get("restart") in ("always", "unless-stopped", "on-failure"), f"{name}: restart={svc.get('restart')}"


def test_compose_kafka_is_a_three_node_kraft_cluster_that_keeps_two_copies():
    nodes = {n: compose_env(n) for n, s in compose()["services"].items() if s.get("image", "").startswith("apache/kafka:")}
    brokers = {n: env for n, env in nodes.items() if "broker" in env["KAFKA_PROCESS_ROLES"].split(",")}
    controllers = {env["KAFKA_NODE_ID"] for env in nodes.values() if "controller" in env["KAFKA_PROCESS_ROLES"].split(",")}
    assert len(brokers) == 3 and len({env["KAFKA_NODE_ID"] for env in nodes.values()}) == len(nodes)
    assert len(controllers) in (3, 5), "a KRaft quorum of three (or five) controllers"
    for name, env in nodes.items():
        voters = {v.split("@")[0] for v in env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")}
        assert voters == controllers, name
    for name, env in brokers.items():
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", name
        assert int(env["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == 3 and int(env["KAFKA_MIN_INSYNC_REPLICAS"]) == 2, name
        assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 3, name
        assert env["CLUSTER_ID"] == next(iter(brokers.values()))["CLUSTER_ID"], "one cluster id"
    for service in compose_processes():
        env = compose_env(service)
        assert env["LEADFLOW_REPLICATION_FACTOR"] == "3", service
        bootstrap = {h.split(":")[0] for h in env["LEADFLOW_KAFKA_BOOTSTRAP"].split(",")}
        assert bootstrap == set(brokers), service


def test_compose_mongo_is_a_replica_set_initiated_by_its_healthcheck():
    svc = compose()["services"]["mongo"]
    assert "--replSet" in svc["command"] and "--keyFile" in svc["command"]
    check = " ".join(svc["healthcheck"]["test"])
    script = re.search(r"/opt/leadflow/mongo/(\S+\.js)", check)
    assert script and "replSetInitiate" in (COMPOSE_DIR / "mongo" / script.group(1)).read_text()
    for service in compose_processes():
        assert "replicaSet=rs0" in compose_env(service)["LEADFLOW_MONGO_URL"], service


def test_compose_leadflow_services_wait_for_healthy_kafka_and_mongo():
    infra = {n for n, s in compose()["services"].items() if s.get("image", "").startswith(("apache/kafka:", "mongo:"))}
    for name in compose_processes():
        depends = compose()["services"][name].get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        healthy = {d for d, c in depends.items() if c.get("condition") == "service_healthy"}
        assert healthy >= infra, f"{name} does not wait for {infra - healthy}"
    grafana = next(s for s in compose()["services"].values() if s.get("image", "").startswith("grafana/"))
    assert any(c.get("condition") == "service_healthy" for c in grafana["depends_on"].values())


def test_compose_healthchecks_probe_each_process_on_its_own_port():
    for name, process in compose_processes().items():
        env = compose_env(name)
        port = env.get("LEADFLOW_API_PORT" if process == "api" else "LEADFLOW_WEB_PORT") or str(default_port(process))
        test = " ".join(compose()["services"][name]["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/healthz" in test, f"{name}: healthcheck {test!r} misses port {port}"
        if process != "api":
            assert env.get("LEADFLOW_WEB_HOST") == "0.0.0.0", f"{name}: /metrics must be reachable from Prometheus"


def test_compose_volumes_are_declared_and_bind_mounts_exist():
    declared = set(compose().get("volumes") or {})
    used = set()
    for name, svc in compose()["services"].items():
        for volume in svc.get("volumes") or []:
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (COMPOSE_DIR / source).exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert declared == used, f"declared but unused volumes: {declared - used}"
    for prefix in ("apache/kafka:", "mongo:", "prom/prometheus", "grafana/grafana"):
        for name, svc in compose()["services"].items():
            if svc.get("image", "").startswith(prefix):
                assert any(not str(v).startswith((".", "/")) for v in svc.get("volumes") or []), f"{name}: no named volume"


def test_compose_has_no_secret_inline():
    required = set()
    for name, svc in compose()["services"].items():
        for key, value in compose_env(name).items():
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", value), f"{name}: {key} must be ${{VAR:?...}} from .env"
            masked = re.sub(r"\$\{[^}]*\}", "\0", value)  # each interpolation becomes one NUL
            password = re.search(r"://[^/:@]+:([^@]*)@", masked)
            if password:
                assert password.group(1) == "\0", f"{name}: {key} spells a password"
            for variable, operator in re.findall(r"\$\{(\w+)(:?[-?])?", value):
                if SECRET_NAME.search(variable):
                    assert operator == ":?", f"{name}: {key} must require {variable} (${{{variable}:?...}})"
            required.update(re.findall(r"\$\{(\w+):\?", value))
    example = COMPOSE_DIR / ".env.example"
    entries = dict(line.split("=", 1) for line in example.read_text().splitlines()
                   if line.strip() and not line.startswith("#"))
    assert required <= set(entries), f"required by compose but missing in .env.example: {required - set(entries)}"
    for key, value in entries.items():
        if SECRET_NAME.search(key):
            assert value.strip() == "", f".env.example must not carry a value for {key}"
    assert ".env" in (COMPOSE_DIR / ".gitignore").read_text().split()


def test_compose_runs_the_image_with_a_known_process_name():
    script = _heredoc("/usr/local/bin/leadflow-entrypoint")
    for name, process in compose_processes().items():
        assert re.search(rf"^\s*(?:[\w-]+ \| )?{process}(?: \| [\w-]+)?\)", script, re.M), f"{name}: {process}"
        assert compose()["services"][name]["build"]["dockerfile"] == "Dockerfile"


# ---- Prometheus and alerts ------------------------------------------------------------------------


@cache
def prometheus() -> dict:
    return yaml.safe_load((MONITORING / "prometheus.yml").read_text())


@cache
def alert_groups() -> list[dict]:
    return yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]


def _scrape_targets() -> dict[str, set[str]]:
    return {
        job["job_name"]: {t for sc in job.get("static_configs", []) for t in sc["targets"]}
        for job in prometheus()["scrape_configs"]
    }


def test_prometheus_scrapes_the_api_and_every_worker_of_the_compose_stack():
    targets = _scrape_targets()
    for name, process in compose_processes().items():
        env = compose_env(name)
        port = env.get("LEADFLOW_API_PORT" if process == "api" else "LEADFLOW_WEB_PORT") or str(default_port(process))
        job = f"leadflow-{process}"
        assert f"{name}:{port}" in targets.get(job, set()), f"job {job} does not scrape {name}:{port}"
    for job in prometheus()["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"


def test_prometheus_loads_the_alert_rules_mounted_by_compose():
    svc = next(s for s in compose()["services"].values() if s.get("image", "").startswith("prom/prometheus"))
    mounts = dict(v.split(":")[:2][::-1] for v in svc["volumes"] if v.startswith("."))  # target -> source
    config_target = next(a.split("=", 1)[1] for a in svc["command"] if a.startswith("--config.file="))
    assert (COMPOSE_DIR / mounts[config_target]).resolve() == MONITORING / "prometheus.yml"
    for rule_file in prometheus()["rule_files"]:
        assert (COMPOSE_DIR / mounts[rule_file]).resolve() == MONITORING / "alerts.yml"


def test_alert_rules_are_complete_and_name_only_exported_metrics():
    allowed = set(exported_series()) | PROMETHEUS_SERIES
    names = []
    for group in alert_groups():
        pending = group["name"].endswith("-pending")
        for rule in group["rules"]:
            where = f"alert {rule.get('alert')}"
            assert rule.get("alert") and rule.get("expr"), rule
            assert rule["labels"]["severity"] in ("warning", "critical"), where
            assert {"summary", "description", "runbook"} <= set(rule["annotations"]), where
            _check_names(where, rule["expr"], allowed | (PENDING_METRICS if pending else set()))
            names.append(rule["alert"])
    assert len(names) == len(set(names)), "alert names must be unique"


def test_alerts_cover_what_must_page_or_warn():
    exprs = " ".join(r["expr"] for g in alert_groups() if not g["name"].endswith("-pending") for r in g["rules"])
    for metric in ("leadflow_dead_letters_total", "leadflow_transient_retries_total", "leadflow_api_requests_total",
                   "leadflow_identity_conflicts_total", "leadflow_identity_quarantined_total"):
        assert metric in exprs, f"no alert on {metric}"
    assert re.search(r"histogram_quantile\(0\.99,[^;]*leadflow_processing_seconds_bucket", exprs)
    assert 'status=~"5.."' in exprs


def test_pending_metrics_are_still_pending():
    """When a pending metric is exported, move its rules out of the "-pending" group and drop it here."""
    assert not PENDING_METRICS & exported_series(), "exported now: no longer pending"


def test_promtool_checks_the_rules_and_runs_their_tests():
    """The rule tests of alerts_test.yml, run by Prometheus's own promtool (Debian's, from `make setup`)."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make setup` installs Debian's prometheus package"
    for args in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        done = subprocess.run([promtool, *args], cwd=MONITORING, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_rule_test():
    """Every alert fires in some case of alerts_test.yml: an ALERTS{alertname=...} query expecting samples."""
    spec = yaml.safe_load((MONITORING / "alerts_test.yml").read_text())
    assert spec["rule_files"] == ["alerts.yml"]
    firing = set()
    for case in spec["tests"]:
        for check in case.get("promql_expr_test", []):
            name = re.search(r'ALERTS\{[^}]*alertname="(\w+)"', check["expr"])
            if name and 'alertstate="firing"' in check["expr"] and check.get("exp_samples"):
                firing.add(name.group(1))
    for group in alert_groups():
        for rule in group["rules"]:
            assert rule["alert"] in firing, f"{rule['alert']} fires in no case of alerts_test.yml"


def _anchors(markdown: str) -> set[str]:
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", markdown, re.M)}


def test_every_alert_has_a_runbook_section():
    anchors = _anchors((ROOT / "docs" / "operations.md").read_text())
    for group in alert_groups():
        for rule in group["rules"]:
            runbook = rule["annotations"]["runbook"]
            assert runbook.startswith("docs/operations.md#"), runbook
            assert runbook.split("#", 1)[1] in anchors, f"{rule['alert']}: no section {runbook}"


# ---- Grafana --------------------------------------------------------------------------------------


@cache
def dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def _panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # collapsed rows
    return out


def test_grafana_provisioning_points_at_the_dashboards_and_the_datasource():
    datasource = yaml.safe_load((MONITORING / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uids = {d["uid"] for d in datasource["datasources"]}
    provider = yaml.safe_load((MONITORING / "grafana/provisioning/dashboards/leadflow.yml").read_text())
    grafana = next(s for s in compose()["services"].values() if s.get("image", "").startswith("grafana/"))
    mounts = {v.split(":")[1]: (COMPOSE_DIR / v.split(":")[0]).resolve() for v in grafana["volumes"] if v.startswith(".")}
    for p in provider["providers"]:
        assert mounts[p["options"]["path"]] == DASHBOARDS
    assert mounts["/etc/grafana/provisioning"] == MONITORING / "grafana" / "provisioning"
    assert set(dashboards()) >= {"stream-health.json", "business-funnel.json"}
    for name, dashboard in dashboards().items():
        for panel in _panels(dashboard):
            ds = panel.get("datasource")
            if ds:
                assert ds["uid"] in uids, f"{name}: panel {panel['title']} uses datasource {ds['uid']}"


def test_dashboards_name_only_exported_metrics():
    allowed = set(exported_series()) | PROMETHEUS_SERIES
    uids = set()
    for name, dashboard in dashboards().items():
        assert dashboard["uid"] not in uids
        uids.add(dashboard["uid"])
        ids = [p["id"] for p in _panels(dashboard)]
        assert len(ids) == len(set(ids)), f"{name}: panel ids repeat"
        for panel in _panels(dashboard):
            for target in panel.get("targets", []):
                _check_names(f"{name}: {panel['title']}", target["expr"], allowed)
        for variable in dashboard.get("templating", {}).get("list", []):
            query = variable.get("query")
            query = query.get("query") if isinstance(query, dict) else query
            if variable.get("type") == "query":
                selector = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
                assert selector, f"{name}: variable {variable['name']} query {query!r}"
                _check_names(f"{name}: variable {variable['name']}", selector.group(1), allowed)


def _dashboard_metrics(name: str) -> set[str]:
    return {m for p in _panels(dashboards()[name]) for t in p.get("targets", []) for m in promql_metric_names(t["expr"])}


def test_stream_health_dashboard_shows_throughput_latency_errors_and_the_api():
    assert _dashboard_metrics("stream-health.json") >= {
        "leadflow_events_consumed_total", "leadflow_events_produced_total", "leadflow_processing_seconds_bucket",
        "leadflow_dead_letters_total", "leadflow_transient_retries_total", "leadflow_api_requests_total",
        "leadflow_api_request_seconds_bucket",
    }


def test_business_funnel_dashboard_shows_one_id():
    assert _dashboard_metrics("business-funnel.json") >= {
        "leadflow_identity_merges_total", "leadflow_identity_conflicts_total", "leadflow_identity_quarantined_total",
    }


def test_every_dashboard_panel_is_explained_in_operations_doc():
    doc = (ROOT / "docs" / "operations.md").read_text()
    for name, dashboard in dashboards().items():
        for panel in _panels(dashboard):
            if panel["type"] not in ("row", "text"):
                assert f"**{panel['title']}**" in doc, f"{name}: panel {panel['title']!r} is not described"


# ---- Kubernetes -----------------------------------------------------------------------------------


def _load_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _merge(base, patch):
    """Strategic-merge enough for these manifests: maps merge, null deletes, lists of named items merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = _merge(out[key], value) if key in out else value
        return out
    named = isinstance(base, list) and isinstance(patch, list) and all(
        isinstance(x, dict) and "name" in x for x in base + patch)
    if named:
        out = list(base)
        for item in patch:
            index = next((i for i, x in enumerate(out) if x["name"] == item["name"]), None)
            if index is None:
                out.append(item)
            else:
                out[index] = _merge(out[index], item)
        return out
    return patch


def _env_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))


def render(directory: Path) -> list[dict]:
    """A kustomization's resources, components, configMapGenerator and patches, without kubectl."""
    k = yaml.safe_load((directory / "kustomization.yaml").read_text())
    docs: list[dict] = []
    for entry in k.get("resources", []) + k.get("components", []):
        path = directory / entry
        docs.extend(render(path) if path.is_dir() else _load_docs(path))
    for generator in k.get("configMapGenerator", []):
        data: dict[str, str] = {}
        for env in generator.get("envs", []):
            data.update(_env_file(directory / env))
        data.update(line.split("=", 1) for line in generator.get("literals", []))
        existing = next((d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == generator["name"]), None)
        if generator.get("behavior") == "merge":
            assert existing, f"{directory}: merges into a missing ConfigMap {generator['name']}"
            existing["data"] = {**existing["data"], **data}
        else:
            docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}, "data": data})
    for patch in k.get("patches", []):
        for p in _load_docs(directory / patch["path"]):
            index = next((i for i, d in enumerate(docs)
                          if (d["kind"], d["metadata"]["name"]) == (p["kind"], p["metadata"]["name"])), None)
            assert index is not None, f"{directory}: patch for missing {p['kind']}/{p['metadata']['name']}"
            docs[index] = _merge(docs[index], p)
    return docs


def _of(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _settings(docs: list[dict]) -> dict[str, str]:
    maps = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("leadflow-settings")]
    assert len(maps) == 1, "one ConfigMap leadflow-settings"
    return maps[0]["data"]


def _quantity(value) -> float:
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in sorted(units.items(), key=lambda u: -len(u[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def _min_replicas(docs: list[dict], deployment: str) -> int:
    for so in _of(docs, "ScaledObject").values():
        if so["spec"]["scaleTargetRef"]["name"] == deployment:
            return so["spec"].get("minReplicaCount", 0)
    for hpa in _of(docs, "HorizontalPodAutoscaler").values():
        if hpa["spec"]["scaleTargetRef"]["name"] == deployment:
            return hpa["spec"].get("minReplicas", 1)
    raise AssertionError(f"nothing scales {deployment}")


def check_deployments(docs: list[dict]) -> None:
    deployments = _of(docs, "Deployment")
    assert set(deployments) == {f"leadflow-{p}" for p in PROCESSES}, sorted(deployments)
    secret_keys = set(yaml.safe_load((K8S / "base" / "secret.example.yaml").read_text())["stringData"])
    settings = _settings(docs)
    for process in PROCESSES:
        name = f"leadflow-{process}"
        spec = deployments[name]["spec"]
        assert "replicas" not in spec, f"{name}: the autoscaler owns the replica count"
        _min_replicas(docs, name)
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        labels = spec["template"]["metadata"]["labels"]
        assert labels.get("leadflow.io/job") == f"leadflow-{process}", f"{name}: job label for Prometheus"
        (container,) = pod["containers"]
        assert container["args"][0] == process, name
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        env = {e["name"]: e for e in container.get("env", [])}
        port_setting = "LEADFLOW_API_PORT" if process == "api" else "LEADFLOW_WEB_PORT"
        port = int(env[port_setting]["value"] if port_setting in env else settings.get(port_setting, default_port(process)))
        for probe, path in (("startupProbe", "/healthz"), ("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            http = container.get(probe, {}).get("httpGet")
            assert http and http["path"] == path, f"{name}: {probe}"
            assert ports.get(http["port"], http["port"]) == port, f"{name}: {probe} probes {http['port']}, serves {port}"
        resources = container.get("resources", {})
        for kind in ("cpu", "memory"):
            request, limit = resources.get("requests", {}).get(kind), resources.get("limits", {}).get(kind)
            assert request and limit, f"{name}: {kind} request and limit"
            assert _quantity(request) <= _quantity(limit), f"{name}: {kind} request above limit"
        assert any(e.get("configMapRef", {}).get("name", "").startswith("leadflow-settings")
                   for e in container.get("envFrom", [])), name
        refs = {e["valueFrom"]["secretKeyRef"]["key"]: e["valueFrom"]["secretKeyRef"]["name"]
                for e in env.values() if "secretKeyRef" in e.get("valueFrom", {})}
        assert set(refs.values()) <= {"leadflow-secrets"} and set(refs) <= secret_keys, f"{name}: {refs}"
        personal = {"LEADFLOW_HMAC_SECRET", "LEADFLOW_FERNET_KEY"}
        assert (personal <= set(refs)) == handles_personal_data(process), f"{name}: personal-data secrets"
        assert "LEADFLOW_MONGO_URL" in refs, name
    for secret in _of(docs, "Secret").values():
        assert not any((secret.get("data") or {}).values()) and not any((secret.get("stringData") or {}).values()), \
            "secrets are created out of band, never rendered from the repository"


def check_disruption_budgets(docs: list[dict]) -> None:
    deployments = _of(docs, "Deployment")
    budgets = list(_of(docs, "PodDisruptionBudget").values())
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        mine = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(mine) == 1, f"{name}: {len(mine)} PodDisruptionBudgets"
        spec = mine[0]["spec"]
        assert ("minAvailable" in spec) != ("maxUnavailable" in spec), f"{name}: minAvailable or maxUnavailable"
        if isinstance(spec.get("minAvailable"), int):
            assert spec["minAvailable"] < _min_replicas(docs, name), f"{name}: the budget would block every drain"


def check_scaled_objects(docs: list[dict]) -> None:
    settings = _settings(docs)
    partitions = int(settings["LEADFLOW_PARTITIONS"])
    prefix = settings.get("LEADFLOW_TOPIC_PREFIX", "")
    scaled = _of(docs, "ScaledObject")
    for service, topics in CONSUMERS.items():
        target = f"leadflow-{service}"
        mine = [s for s in scaled.values() if s["spec"]["scaleTargetRef"]["name"] == target]
        assert len(mine) == 1, f"{service}: {len(mine)} ScaledObjects"
        spec = mine[0]["spec"]
        low, high = spec["minReplicaCount"], spec["maxReplicaCount"]
        assert 1 <= low <= high <= partitions, f"{service}: replicas {low}..{high} with {partitions} partitions"
        if service == "identity":
            assert low >= 2, "two identity workers always run"
        triggered = set()
        for trigger in spec["triggers"]:
            meta = trigger["metadata"]
            assert trigger["type"] == "kafka", service
            assert meta["consumerGroup"] == consumer_group(service, prefix), service
            assert int(meta["lagThreshold"]) > 0, service
            assert meta.get("bootstrapServers") or meta.get("bootstrapServersFromEnv") in settings, service
            triggered.add(meta["topic"])
        consumed = {t.qualified(prefix) for t in topics}
        assert triggered <= consumed, f"{service} scales on topics it does not read: {triggered - consumed}"
        partitioned = {t.qualified(prefix) for t in topics if t.partitions != 1}
        assert partitioned <= triggered, f"{service}: no trigger for {partitioned - triggered}"


def check_all(docs: list[dict]) -> None:
    check_deployments(docs)
    check_disruption_budgets(docs)
    check_scaled_objects(docs)
    api = [s for s in _of(docs, "Service").values() if s["spec"]["selector"].get("app.kubernetes.io/name") == "leadflow-api"]
    assert api and api[0]["spec"]["ports"][0]["targetPort"] == "http", "a Service for the API"


@pytest.mark.parametrize("directory", [K8S / "base", *OVERLAYS], ids=lambda p: p.name)
def test_kubernetes_manifests(directory):
    check_all(render(directory))


def test_there_are_dev_and_prod_overlays():
    assert {p.name for p in OVERLAYS} >= {"dev", "prod"}


def test_kubernetes_workers_are_scraped_like_the_compose_stack():
    monitor = _of(render(K8S / "components" / "prometheus-operator"), "PodMonitor")["leadflow"]["spec"]
    assert monitor["jobLabel"] == "leadflow.io/job"
    ports = {e["port"] for e in monitor["podMetricsEndpoints"]}
    for deployment in _of(render(K8S / "base"), "Deployment").values():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert ports & {p["name"] for p in container["ports"]}, deployment["metadata"]["name"]
    assert {f"leadflow-{p}" for p in PROCESSES} <= set(_scrape_targets()), "the same job names as prometheus.yml"


def _summary(docs: list[dict]) -> dict:
    """What the checks read, with kustomize's name hashes, labels and namespaces left out."""
    out: dict = {"settings": _settings(docs)}
    for name, d in _of(docs, "Deployment").items():
        (c,) = d["spec"]["template"]["spec"]["containers"]
        out[f"Deployment/{name}"] = {k: c.get(k) for k in ("args", "ports", "resources", "startupProbe", "readinessProbe",
                                                              "livenessProbe", "env")}
    for kind in ("ScaledObject", "PodDisruptionBudget", "HorizontalPodAutoscaler"):
        for name, d in _of(docs, kind).items():
            out[f"{kind}/{name}"] = d["spec"]
    return out


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH: `kubectl kustomize` cannot run here")
@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_kubectl_kustomize_renders_the_overlay(overlay):
    done = subprocess.run(["kubectl", "kustomize", str(overlay)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rendered = [d for d in yaml.safe_load_all(done.stdout) if d]
    check_all(rendered)
    assert _summary(rendered) == _summary(render(overlay)), "kustomize and the test's own merge disagree"
    namespaces = {d["metadata"].get("namespace") for d in rendered if d["kind"] != "Namespace"}
    assert len(namespaces) == 1 and None not in namespaces, f"one namespace per overlay: {namespaces}"
