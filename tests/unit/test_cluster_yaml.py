"""Every file under cluster/ is checked, and a broken copy of each is rejected by the same check.

- Ray cluster launcher YAML (aws.yaml, local.yaml): Ray's own JSON schema
  (ray/autoscaler/ray-schema.json) with jsonschema, then Ray's own
  ``prepare_config`` + ``validate_config`` (defaults merged, node types, bounds),
  then the foundry's needs: CPU and GPU capacity, autoscaling bounds, the project
  installed, token auth, and the foundry's environment accepted by FoundrySettings.
- KubeRay manifests: apiVersion ray.io/v1, kinds, required fields of the KubeRay
  API (the CRD schemas are not installed here), Ray version, token auth, the
  foundry's ConfigMap on every pod; the RayJob runs train_jobs/train.py; the
  RayService's serveConfigV2 is serve_apps/foundry.yaml's application, both parsed
  with Ray Serve's ServeDeploySchema.
- prometheus.yml reads the service-discovery file Ray writes; the Grafana
  dashboard's every query uses only the foundry's metric names, in valid PromQL
  shape (balanced brackets, counters only under rate()/increase(), gauges never).
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
FOUNDRY_ENV = ("MLFLOW_TRACKING_URI", "FOUNDRY_LAKE_URI", "FOUNDRY_ONLINE_STORE_URI")
TRAIN_SCRIPT = "train_jobs/train.py"


class ClusterFileError(AssertionError):
    """A cluster file breaks a rule; the message names the file, the field and the fix."""


def _fail(where: str, message: str) -> None:
    raise ClusterFileError(f"{where}: {message}")


def _ray_version() -> str:
    import ray

    return str(ray.__version__)


# ---------------------------------------------------------------- launcher YAML


def _launcher_schema() -> dict[str, Any]:
    import ray.autoscaler

    return json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


def _env_file_lines(where: str, config: dict[str, Any]) -> dict[str, str]:
    """The environment `ray start` gets from ~/foundry.env, found by sourcing the file as the nodes do.

    The setup command writes it with ``printf '%s\\n' 'K=V' ... > ~/foundry.env``; the start
    commands run ``set -a && . ~/foundry.env``. Sourcing it here with bash catches a value the
    shell would split (an unquoted ``&`` in a URI, say).
    """
    import subprocess
    import tempfile

    for command in config.get("setup_commands", []):
        if "foundry.env" not in command:
            continue
        words = shlex.split(command)
        if words[:2] != ["printf", "%s\\n"] or words[-2:] != [">", "~/foundry.env"]:
            _fail(
                where,
                f"write ~/foundry.env as printf '%s\\n' 'K=V' ... > ~/foundry.env, got {command!r}",
            )
        lines = words[2:-2]
        with tempfile.NamedTemporaryFile("w", suffix=".env") as env_file:
            env_file.write("\n".join(lines) + "\n")
            env_file.flush()
            done = subprocess.run(
                ["bash", "-c", f"set -a && . {shlex.quote(env_file.name)} && set +a && env -0"],
                capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
            )  # fmt: skip
        if done.returncode != 0 or done.stderr.strip():
            _fail(
                where,
                f"~/foundry.env does not source cleanly: {done.stderr.strip() or done.returncode}",
            )
        sourced = dict(item.split("=", 1) for item in done.stdout.split("\0") if "=" in item)
        written = {line.split("=", 1)[0] for line in lines}
        for key in written:
            value = sourced.get(key)
            raw = next(line.split("=", 1)[1] for line in lines if line.startswith(f"{key}="))
            if value is None or (value != raw and shlex.split(raw) != [value]):
                _fail(
                    where, f"~/foundry.env line {key}={raw} sources as {value!r}: quote the value"
                )
        return {k: sourced[k] for k in written}
    return {}


def _settings_from_env(where: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    from raycore.settings import FoundrySettings

    for key in (*FOUNDRY_ENV, "FOUNDRY_HOME", "RAY_ADDRESS", "FOUNDRY_SERVE_HOST"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        if key.startswith(("FOUNDRY_", "MLFLOW_")):
            monkeypatch.setenv(key, value)
    try:
        return FoundrySettings.load()
    except Exception as exc:
        _fail(where, f"the foundry environment is not accepted by FoundrySettings: {exc}")


def check_launcher(where: str, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Validate one cluster-launcher config the way `ray up` does, then the foundry's needs."""
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    try:
        jsonschema.validate(config, _launcher_schema())
    except jsonschema.ValidationError as exc:
        path = ".".join(str(p) for p in exc.absolute_path) or "(top level)"
        _fail(where, f"ray-schema.json rejects {path}: {exc.message}")
    try:
        prepared = prepare_config(copy.deepcopy(config))
        validate_config(prepared)
    except (ValueError, RuntimeError, KeyError) as exc:
        _fail(where, f"Ray's launcher rejects the config: {exc}")

    provider = config["provider"]["type"]
    if config.get("max_workers") is None:
        _fail(where, "max_workers (the autoscaling upper bound) is not set")
    types = prepared["available_node_types"]
    if provider != "local":
        workers = {n: t for n, t in types.items() if n != prepared["head_node_type"]}
        gpu = [
            n for n, t in workers.items() if "gpu" in n.lower() or "GPU" in t.get("resources", {})
        ]
        cpu = [n for n in workers if n not in gpu]
        if not cpu or not gpu:
            _fail(where, f"needs a CPU and a GPU worker type, found {sorted(workers)}")
        for name in gpu:
            if workers[name].get("min_workers", 0) != 0:
                _fail(
                    where,
                    f"GPU type {name} must scale from zero (min_workers 0), got {workers[name]['min_workers']}",
                )
        for name, node in workers.items():
            if not 0 <= node["min_workers"] <= node["max_workers"] <= prepared["max_workers"]:
                _fail(
                    where,
                    f"{name}: need 0 <= min_workers <= max_workers <= {prepared['max_workers']}, got {node}",
                )
    else:
        for key in ("head_ip", "worker_ips"):
            if not config["provider"].get(key):
                _fail(where, f"provider.{key} is required for an on-premises cluster")

    setup = " && ".join(config.get("setup_commands", []))
    if not re.search(r"pip install .*-c constraints\.txt .*-e \.", setup):
        _fail(
            where,
            "setup_commands must install the project with the pins: pip install -c constraints.txt -e .",
        )
    if config.get("file_mounts", {}).get("~/.ray/auth_token") is None:
        _fail(where, "file_mounts must copy ~/.ray/auth_token to every node (token authentication)")
    env = _env_file_lines(where, config)
    missing = [k for k in ("RAY_AUTH_MODE", *FOUNDRY_ENV) if k not in env]
    if missing:
        _fail(where, f"the foundry environment written by setup_commands lacks {missing}")
    if env["RAY_AUTH_MODE"] != "token":
        _fail(where, f"RAY_AUTH_MODE must be token, got {env['RAY_AUTH_MODE']!r}")
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = [c for c in config.get(key, []) if "ray start" in c]
        if not start or not all(". ~/foundry.env" in c for c in start):
            _fail(
                where,
                f"{key}: `ray start` must run with ~/foundry.env sourced (set -a && . ~/foundry.env)",
            )
    settings = _settings_from_env(where, env, monkeypatch)
    if not settings.tracking_uri.startswith(("http://", "https://")):
        _fail(
            where, f"MLFLOW_TRACKING_URI must name an MLflow server, got {settings.tracking_uri!r}"
        )
    if not (settings.online_store_uri or "").startswith("redis://"):
        _fail(
            where,
            f"FOUNDRY_ONLINE_STORE_URI must be redis://..., got {settings.online_store_uri!r}",
        )
    if "://" not in settings.lake:
        _fail(where, f"FOUNDRY_LAKE_URI must be an object-store URI, got {settings.lake!r}")


# ---------------------------------------------------------------- KubeRay

_KINDS = {"raycluster.yaml": "RayCluster", "rayjob.yaml": "RayJob", "rayservice.yaml": "RayService"}


def _require(where: str, obj: Any, path: str) -> Any:
    """obj at a dotted path; list items by index ("workerGroupSpecs.0.template")."""
    node = obj
    for part in path.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node and node[part] is not None:
            node = node[part]
        else:
            _fail(where, f"required field {path} is missing")
    return node


def _check_pod_template(where: str, template: dict[str, Any], *, config_map: str) -> None:
    containers = _require(where, template, "spec.containers")
    if not isinstance(containers, list) or not containers:
        _fail(where, "spec.containers must list the Ray container")
    ray_container = containers[0]
    for key in ("name", "image"):
        _require(where, ray_container, key)
    tag = ray_container["image"].rsplit(":", 1)[-1]
    if not tag.startswith(_ray_version()):
        _fail(
            where,
            f"image {ray_container['image']} must carry Ray {_ray_version()} (cluster/Dockerfile)",
        )
    refs = [e.get("configMapRef", {}).get("name") for e in ray_container.get("envFrom", [])]
    if config_map not in refs:
        _fail(
            where, f"container {ray_container['name']} must read envFrom configMapRef {config_map}"
        )


def check_cluster_spec(where: str, spec: dict[str, Any], *, config_map: str) -> None:
    """Required fields of a KubeRay RayClusterSpec (ray.io/v1) and the foundry's needs."""
    if spec.get("rayVersion") != _ray_version():
        _fail(
            where,
            f"rayVersion must be {_ray_version()!r} (the Ray the project pins), got {spec.get('rayVersion')!r}",
        )
    if spec.get("authOptions", {}).get("mode") != "token":
        _fail(where, "authOptions.mode must be token (Ray token authentication)")
    head = _require(where, spec, "headGroupSpec")
    if not isinstance(head.get("rayStartParams", {}), dict):
        _fail(where, "headGroupSpec.rayStartParams must be a map of strings")
    _check_pod_template(
        f"{where} headGroupSpec", _require(where, head, "template"), config_map=config_map
    )
    groups = _require(where, spec, "workerGroupSpecs")
    names = [g.get("groupName") for g in groups]
    if len(set(names)) != len(names):
        _fail(where, f"workerGroupSpecs groupName values must be unique, got {names}")
    for i, group in enumerate(groups):
        at = f"{where} workerGroupSpecs[{i}]"
        for key in ("groupName", "minReplicas", "maxReplicas", "template"):
            _require(at, group, key)
        low, high, want = (
            group["minReplicas"],
            group["maxReplicas"],
            group.get("replicas", group["minReplicas"]),
        )
        if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= want <= high):
            _fail(
                at, f"need 0 <= minReplicas <= replicas <= maxReplicas, got {low}, {want}, {high}"
            )
        if not all(isinstance(v, str) for v in group.get("rayStartParams", {}).values()):
            _fail(at, "rayStartParams values must be strings (quote numbers)")
        _check_pod_template(at, group["template"], config_map=config_map)


def _config_map() -> tuple[str, dict[str, str]]:
    doc = yaml.safe_load((CLUSTER / "kuberay" / "foundry-config.yaml").read_text())
    return doc["metadata"]["name"], doc["data"]


def check_config_map(where: str, doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    if doc.get("apiVersion") != "v1" or doc.get("kind") != "ConfigMap":
        _fail(where, f"must be a v1 ConfigMap, got {doc.get('apiVersion')}/{doc.get('kind')}")
    data = _require(where, doc, "data")
    missing = [k for k in FOUNDRY_ENV if k not in data]
    if missing:
        _fail(where, f"data lacks {missing}")
    settings = _settings_from_env(where, data, monkeypatch)
    if not settings.tracking_uri.startswith(("http://", "https://")):
        _fail(
            where, f"MLFLOW_TRACKING_URI must name an MLflow server, got {settings.tracking_uri!r}"
        )


def _serve_application(where: str, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(application without args, args) of a one-application Serve config, parsed by Ray."""
    from pydantic import ValidationError
    from ray.serve.schema import ServeDeploySchema

    try:
        apps = ServeDeploySchema.model_validate(config).applications
    except ValidationError as exc:
        _fail(where, f"Ray Serve's ServeDeploySchema rejects the config: {exc}")
    if len(apps) != 1:
        _fail(where, f"expected the one foundry application, got {len(apps)}")
    (app,) = apps
    dumped = app.model_dump(exclude_unset=True)
    return {k: v for k, v in dumped.items() if k != "args"}, dict(dumped.get("args", {}))


# Where state lives differs between a laptop and a cluster; everything else must be equal.
_PLACE_ARGS = ("tracking_uri", "home", "online_store_uri", "catalog_dir")


def check_kuberay(where: str, doc: dict[str, Any], *, kind: str) -> None:
    """A KubeRay manifest: kind, required fields, and what the foundry needs of it."""
    if doc.get("apiVersion") != "ray.io/v1":
        _fail(where, f"apiVersion must be ray.io/v1, got {doc.get('apiVersion')!r}")
    if doc.get("kind") != kind:
        _fail(where, f"kind must be {kind}, got {doc.get('kind')!r}")
    _require(where, doc, "metadata.name")
    spec = _require(where, doc, "spec")
    config_map, data = _config_map()
    if kind == "RayCluster":
        check_cluster_spec(where, spec, config_map=config_map)
    elif kind == "RayJob":
        entrypoint = _require(where, spec, "entrypoint")
        words = shlex.split(entrypoint)
        if not any(w.endswith(TRAIN_SCRIPT) for w in words) or "--model" not in words:
            _fail(where, f"entrypoint must run {TRAIN_SCRIPT} --model ID, got {entrypoint!r}")
        from raycore.catalog import load_catalog
        from raycore.errors import CatalogError

        model = words[words.index("--model") + 1] if words.index("--model") + 1 < len(words) else ""
        try:
            load_catalog().get(model)
        except CatalogError as exc:
            _fail(where, f"entrypoint trains {model!r}: {exc.message}")
        if "runtimeEnvYAML" in spec and not isinstance(
            yaml.safe_load(spec["runtimeEnvYAML"]), dict
        ):
            _fail(where, "runtimeEnvYAML must be a YAML map")
        check_cluster_spec(where, _require(where, spec, "rayClusterSpec"), config_map=config_map)
    elif kind == "RayService":
        from raycore.serving.app import AppArgs

        serve = yaml.safe_load(_require(where, spec, "serveConfigV2"))
        local = yaml.safe_load((ROOT / "serve_apps" / "foundry.yaml").read_text())
        app, args = _serve_application(f"{where} serveConfigV2", serve)
        local_app, local_args = _serve_application("serve_apps/foundry.yaml", local)
        if app != local_app:
            _fail(
                where,
                f"serveConfigV2 application {app} differs from serve_apps/foundry.yaml's {local_app}",
            )
        same = {k: v for k, v in args.items() if k not in _PLACE_ARGS}
        local_same = {k: v for k, v in local_args.items() if k not in _PLACE_ARGS}
        if same != local_same:
            _fail(
                where,
                f"serveConfigV2 args {same} differ from serve_apps/foundry.yaml's {local_same}",
            )
        AppArgs.model_validate(args)
        place = {
            "tracking_uri": "MLFLOW_TRACKING_URI",
            "online_store_uri": "FOUNDRY_ONLINE_STORE_URI",
            "home": "FOUNDRY_HOME",
        }
        for arg, env in place.items():
            if args.get(arg) != data.get(env):
                _fail(
                    where,
                    f"serveConfigV2 args.{arg} ({args.get(arg)!r}) must equal {env} of {config_map} ({data.get(env)!r})",
                )
        if serve.get("http_options", {}).get("host") != "0.0.0.0":
            _fail(
                where,
                "serveConfigV2 http_options.host must be 0.0.0.0 so the Kubernetes Service reaches the proxy",
            )
        check_cluster_spec(where, _require(where, spec, "rayClusterConfig"), config_map=config_map)


# ---------------------------------------------------------------- Prometheus + Grafana


def check_prometheus(where: str, config: dict[str, Any]) -> None:
    from ray._common.utils import get_default_ray_temp_dir
    from ray._private.ray_constants import PROMETHEUS_SERVICE_DISCOVERY_FILE

    expected = f"{get_default_ray_temp_dir()}/{PROMETHEUS_SERVICE_DISCOVERY_FILE}"
    duration = re.compile(r"\d+(ms|s|m|h|d)")
    for key in ("scrape_interval", "evaluation_interval"):
        if not duration.fullmatch(str(config.get("global", {}).get(key, ""))):
            _fail(where, f"global.{key} must be a Prometheus duration like 10s")
    jobs = {j.get("job_name"): j for j in config.get("scrape_configs", [])}
    if "ray" not in jobs:
        _fail(where, "scrape_configs needs a job_name: ray")
    files = [f for sd in jobs["ray"].get("file_sd_configs", []) for f in sd.get("files", [])]
    if expected not in files:
        _fail(where, f"job ray must read the discovery file Ray writes, {expected}; got {files}")


COUNTERS = {
    "ray_foundry_requests_total",
    "ray_foundry_request_errors_total",
    "ray_foundry_prediction_log_dropped_total",
    "ray_foundry_alias_changes_total",
    "ray_foundry_retrains_total",
}
HISTOGRAMS = {"ray_foundry_request_latency_ms", "ray_foundry_batch_size"}
GAUGES = {"ray_foundry_drift_severity"}
SERIES_UNDER_RATE = COUNTERS | {f"{h}_{s}" for h in HISTOGRAMS for s in ("bucket", "sum", "count")}
METRICS = SERIES_UNDER_RATE | GAUGES
LABELS = {"model", "version", "route", "status", "le"}
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "rate", "increase", "irate",
    "histogram_quantile", "clamp_min", "clamp_max", "topk", "label_values", "e",
}  # fmt: skip
_IDENT = re.compile(r"(?<![\w$])[A-Za-z_:][\w:]*")


def check_promql(where: str, expr: str) -> None:
    """The shape rules the dashboard's queries must keep (a small PromQL lint, not a parser)."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack: list[str] = []
    for ch in re.sub(r'"[^"]*"', '""', expr):
        if ch in pairs:
            stack.append(pairs[ch])
        elif ch in pairs.values():
            if not stack or stack.pop() != ch:
                _fail(where, f"unbalanced {ch!r} in {expr!r}")
    if stack:
        _fail(where, f"unclosed {stack[-1]!r} in {expr!r}")
    bare = re.sub(r'"[^"]*"', '""', expr)
    bare = re.sub(r"\{[^}]*\}", "", bare)  # label matchers
    bare = re.sub(r"\[[^\]]*\]", "[]", bare)  # range selectors
    names = set(_IDENT.findall(bare))
    metrics = {n for n in names if n.startswith("ray_")}
    unknown = metrics - METRICS
    if unknown:
        _fail(
            where,
            f"unknown metric(s) {sorted(unknown)} in {expr!r}; the foundry exports {sorted(METRICS)}",
        )
    others = names - metrics - LABELS - PROMQL_WORDS
    if others:
        _fail(
            where,
            f"unexpected name(s) {sorted(others)} in {expr!r} (a metric without the ray_ prefix?)",
        )
    if not metrics:
        _fail(where, f"no foundry metric in {expr!r}")
    for name in metrics:
        for m in re.finditer(rf"(?<![\w:]){name}(?![\w:])", expr):
            before = expr[: m.start()]
            after = expr[m.end() :]
            under_rate = re.search(r"(rate|increase|irate)\(\s*$", before) is not None
            ranged = re.match(r"\s*(\{[^}]*\})?\s*\[[^\]]+\]", after) is not None
            if name in SERIES_UNDER_RATE and not (under_rate and ranged):
                _fail(
                    where,
                    f"counter {name} must be read with rate()/increase() over a range in {expr!r}",
                )
            if name in GAUGES and (under_rate or ranged):
                _fail(where, f"gauge {name} must not be read with rate()/increase() in {expr!r}")
            if name.endswith("_bucket") and "histogram_quantile(" not in before:
                _fail(where, f"{name} belongs inside histogram_quantile() in {expr!r}")
        if name.endswith("_bucket") and not re.search(r"by \([^)]*\ble\b", expr):
            _fail(
                where,
                f"histogram_quantile over {name} must keep the le label (sum by (..., le)) in {expr!r}",
            )
    if 'model=~"$model"' not in expr:
        _fail(where, f'every query must be per model (model=~"$model"): {expr!r}')


def check_dashboard(where: str, dashboard: dict[str, Any]) -> None:
    panels = dashboard.get("panels")
    if not panels:
        _fail(where, "the dashboard has no panels")
    variables = {v.get("name") for v in dashboard.get("templating", {}).get("list", [])}
    if not {"datasource", "model"} <= variables:
        _fail(
            where, f"templating needs the datasource and model variables, got {sorted(variables)}"
        )
    ids = [p.get("id") for p in panels]
    if len(set(ids)) != len(ids):
        _fail(where, f"panel ids must be unique, got {ids}")
    used: set[str] = set()
    for panel in panels:
        at = f"{where} panel {panel.get('id')} ({panel.get('title')!r})"
        for key in ("title", "type", "gridPos"):
            _require(at, panel, key)
        targets = panel.get("targets") or []
        if not targets:
            _fail(at, "has no query")
        for target in targets:
            expr = _require(at, target, "expr")
            check_promql(at, expr)
            used |= set(re.findall(r"ray_foundry_\w+", expr))
    covered = {
        re.sub(r"_(bucket|sum|count)$", "", n) if n.startswith(tuple(HISTOGRAMS)) else n
        for n in used
    }
    missing = (COUNTERS | HISTOGRAMS | GAUGES) - covered
    if missing:
        _fail(where, f"no panel shows {sorted(missing)}")


# ---------------------------------------------------------------- the files themselves


def _load(path: Path) -> Any:
    return (
        json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
    )


def _checker(path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], None]:
    rel = str(path.relative_to(ROOT))
    if path.parent == CLUSTER and path.name in ("aws.yaml", "local.yaml"):
        return lambda doc: check_launcher(rel, doc, monkeypatch)
    if path.name in _KINDS:
        return lambda doc: check_kuberay(rel, doc, kind=_KINDS[path.name])
    if path.name == "foundry-config.yaml":
        return lambda doc: check_config_map(rel, doc, monkeypatch)
    if path.name == "prometheus.yml":
        return lambda doc: check_prometheus(rel, doc)
    if path.suffix == ".json" and path.parent.name == "grafana":
        return lambda doc: check_dashboard(rel, doc)
    raise ClusterFileError(
        f"{rel}: no check knows this file; add one to tests/unit/test_cluster_yaml.py"
    )


FILES = sorted(p for p in CLUSTER.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))


def test_every_cluster_file_has_a_check() -> None:
    names = {str(p.relative_to(CLUSTER)) for p in FILES}
    assert {
        "aws.yaml", "local.yaml", "prometheus.yml", "grafana/foundry-dashboard.json",
        "kuberay/raycluster.yaml", "kuberay/rayjob.yaml", "kuberay/rayservice.yaml", "kuberay/foundry-config.yaml",
    } <= names  # fmt: skip


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CLUSTER)))
def test_cluster_file_passes_its_check(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _checker(path, monkeypatch)(_load(path))


def test_dockerfile_builds_on_the_pinned_ray() -> None:
    text = (CLUSTER / "Dockerfile").read_text()
    base = re.search(r"^ARG RAY_IMAGE=rayproject/ray:(\S+)$", text, re.M)
    assert base is not None and base.group(1).startswith(f"{_ray_version()}-py311"), base
    assert "pip install --no-cache-dir -c constraints.txt -e ." in text


# ---------------------------------------------------------------- broken copies are rejected


def _set(doc: Any, path: str, value: Any) -> Any:
    """A copy of doc with the dotted path set (value ... = delete)."""
    out = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is ...:
        del node[int(last) if isinstance(node, list) else last]
    else:
        node[int(last) if isinstance(node, list) else last] = value
    return out


def _serve_with(doc: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    serve = yaml.safe_load(doc["spec"]["serveConfigV2"])
    change(serve)
    return _set(doc, "spec.serveConfigV2", yaml.safe_dump(serve))


def _drop_env(doc: dict[str, Any], key: str) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out["setup_commands"] = [c.replace(f"'{key}=", "'IGNORED=") for c in out["setup_commands"]]
    return out


def _unquote(doc: dict[str, Any], key: str) -> dict[str, Any]:
    """The env line of key written without the quotes that keep its value one shell word."""
    out = copy.deepcopy(doc)
    out["setup_commands"] = [
        re.sub(rf"\"({key}=)'([^']*)'\"", r"'\1\2'", c) for c in out["setup_commands"]
    ]
    assert out != doc, f"{key} is not quoted in the file"
    return out


def _panel_expr(doc: dict[str, Any], index: int, expr: str) -> dict[str, Any]:
    return _set(doc, f"panels.{index}.targets.0.expr", expr)


BROKEN: list[tuple[str, Callable[[Any], Any], str]] = [
    ("aws.yaml", lambda d: _set(d, "provider", ...), "provider"),
    ("aws.yaml", lambda d: _set(d, "max_workers", "ten"), "max_workers"),
    ("aws.yaml", lambda d: _set(d, "head_node_typo", "head"), "head_node_typo"),
    ("aws.yaml", lambda d: _set(d, "available_node_types.cpu_worker.resources", {"CPU": -1}), "resources"),
    ("aws.yaml", lambda d: _set(d, "max_workers", 0), "max_workers"),
    ("aws.yaml", lambda d: _set(d, "available_node_types.gpu_worker.min_workers", 1), "scale from zero"),
    ("aws.yaml", lambda d: _set(d, "available_node_types.gpu_worker", ...), "GPU worker type"),
    ("aws.yaml", lambda d: _drop_env(d, "MLFLOW_TRACKING_URI"), "MLFLOW_TRACKING_URI"),
    ("aws.yaml", lambda d: _set(d, "file_mounts", {}), "auth_token"),
    ("aws.yaml", lambda d: _set(d, "head_start_ray_commands", ["ray start --head"]), "foundry.env"),
    ("local.yaml", lambda d: _set(d, "provider.worker_ips", "10.0.0.11"), "worker_ips"),
    ("local.yaml", lambda d: _set(d, "min_workers", 2), "min_workers"),
    ("local.yaml", lambda d: _drop_env(d, "FOUNDRY_ONLINE_STORE_URI"), "FOUNDRY_ONLINE_STORE_URI"),
    ("local.yaml", lambda d: _set(d, "setup_commands", d["setup_commands"][2:]), "constraints.txt"),
    ("local.yaml", lambda d: _unquote(d, "FOUNDRY_LAKE_URI"), "quote the value"),
    ("kuberay/raycluster.yaml", lambda d: _set(d, "apiVersion", "ray.io/v1alpha1"), "apiVersion"),
    ("kuberay/raycluster.yaml", lambda d: _set(d, "spec.workerGroupSpecs.0.groupName", ...), "groupName"),
    ("kuberay/raycluster.yaml", lambda d: _set(d, "spec.workerGroupSpecs.1.minReplicas", 5), "minReplicas"),
    ("kuberay/raycluster.yaml", lambda d: _set(d, "spec.headGroupSpec.template.spec.containers", []), "containers"),
    ("kuberay/raycluster.yaml", lambda d: _set(d, "spec.rayVersion", "2.9.0"), "rayVersion"),
    ("kuberay/raycluster.yaml", lambda d: _set(d, "spec.authOptions", ...), "authOptions"),
    ("kuberay/raycluster.yaml", lambda d: _set(d, "spec.workerGroupSpecs.0.rayStartParams", {"num-cpus": 8}), "strings"),
    ("kuberay/raycluster.yaml", lambda d: _set(d, "spec.workerGroupSpecs.0.template.spec.containers.0.envFrom", []), "configMapRef"),
    ("kuberay/rayjob.yaml", lambda d: _set(d, "kind", "RayCluster"), "kind"),
    ("kuberay/rayjob.yaml", lambda d: _set(d, "spec.entrypoint", "python other.py"), "train_jobs/train.py"),
    ("kuberay/rayjob.yaml", lambda d: _set(d, "spec.entrypoint", "python train_jobs/train.py --model mdl-999"), "mdl-999"),
    ("kuberay/rayjob.yaml", lambda d: _set(d, "spec.rayClusterSpec", ...), "rayClusterSpec"),
    ("kuberay/rayservice.yaml", lambda d: _set(d, "spec.rayClusterConfig", ...), "rayClusterConfig"),
    ("kuberay/rayservice.yaml", lambda d: _serve_with(d, lambda s: s["applications"][0]["args"].update(models=["x"])), "differ"),
    ("kuberay/rayservice.yaml", lambda d: _serve_with(d, lambda s: s["applications"][0].update(import_path="a.b:c")), "differs"),
    ("kuberay/rayservice.yaml", lambda d: _serve_with(d, lambda s: s.update(proxy_location="Nowhere")), "proxy_location"),
    ("kuberay/rayservice.yaml", lambda d: _serve_with(d, lambda s: s["applications"][0]["args"].update(tracking_uri="sqlite:///x.db")), "tracking_uri"),
    ("kuberay/rayservice.yaml", lambda d: _serve_with(d, lambda s: s["http_options"].update(host="127.0.0.1")), "0.0.0.0"),
    ("kuberay/foundry-config.yaml", lambda d: _set(d, "data.FOUNDRY_LAKE_URI", ...), "FOUNDRY_LAKE_URI"),
    ("kuberay/foundry-config.yaml", lambda d: _set(d, "data.MLFLOW_TRACKING_URI", "sqlite:///x.db"), "MLflow server"),
    ("prometheus.yml", lambda d: _set(d, "scrape_configs.0.file_sd_configs.0.files", ["/tmp/other.json"]), "discovery"),
    ("prometheus.yml", lambda d: _set(d, "global.scrape_interval", "often"), "scrape_interval"),
    ("grafana/foundry-dashboard.json", lambda d: _panel_expr(d, 0, 'sum by (model) (rate(ray_foundry_requests{model=~"$model"}[5m]))'), "unknown metric"),
    ("grafana/foundry-dashboard.json", lambda d: _panel_expr(d, 0, 'sum by (model) (rate(ray_foundry_requests_total{model=~"$model"}[5m])'), "unclosed"),
    ("grafana/foundry-dashboard.json", lambda d: _panel_expr(d, 0, 'sum by (model) (ray_foundry_requests_total{model=~"$model"})'), "rate()"),
    ("grafana/foundry-dashboard.json", lambda d: _panel_expr(d, 0, 'sum by (model) (rate(ray_foundry_drift_severity{model=~"$model"}[5m]))'), "gauge"),
    ("grafana/foundry-dashboard.json", lambda d: _panel_expr(d, 0, 'sum by (model) (rate(foundry_requests_total{model=~"$model"}[5m]))'), "ray_ prefix"),
    ("grafana/foundry-dashboard.json", lambda d: _panel_expr(d, 0, "sum(rate(ray_foundry_requests_total[5m]))"), "per model"),
    ("grafana/foundry-dashboard.json", lambda d: _panel_expr(d, 4, 'histogram_quantile(0.9, sum by (model) (rate(ray_foundry_request_latency_ms_bucket{model=~"$model"}[5m])))'), "le label"),
    ("grafana/foundry-dashboard.json", lambda d: _set(d, "panels", [p for p in d["panels"] if "retrains" not in json.dumps(p)]), "ray_foundry_retrains_total"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "breakage", "message"), BROKEN, ids=[f"{n}:{m}" for n, _, m in BROKEN]
)
def test_broken_copy_is_rejected(
    name: str, breakage: Callable[[Any], Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = CLUSTER / name
    check = _checker(path, monkeypatch)
    check(_load(path))  # the real file passes ...
    with pytest.raises(ClusterFileError, match=re.escape(message)) as err:
        check(breakage(_load(path)))  # ... and the broken copy does not
    assert str(err.value).startswith(f"cluster/{name}")
