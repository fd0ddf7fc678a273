"""A multi-node Ray cluster on one machine: a head and worker nodes started with ``ray start``.

Each node is one ``ray start --block`` process in its own session, so the
processes it starts (raylet, agents, workers) are its descendants and stopping
a node ends exactly those, as a machine failure would; other Ray instances on
the box are never touched (``ray stop`` would end them all). Every port the
nodes listen on is picked free here, the session files live under ``root``,
and token authentication is on with a token generated for this cluster alone
(``root/auth_token``, named to every node and client by ``RAY_AUTH_TOKEN_PATH``),
so the user's ``~/.ray/auth_token`` is neither read nor written.

Example:
    >>> with LocalCluster(root=Path("/tmp/fmn"), env={"PYTHONPATH": "."}) as cluster:  # doctest: +SKIP
    ...     cluster.start_head(resources={"node_a": 1})
    ...     cluster.add_node("node_b", resources={"node_b": 1})
    ...     run = cluster.submit_job(["python", "train_jobs/train.py", "--model", "mdl-001",
    ...                               "--workers", "2"], working_dir=Path("."))
    ...     cluster.kill_node("node_b")                 # a machine failure: SIGKILL, node_b only
    ...     cluster.wait_node_dead("node_b")            # seconds until the GCS saw it
    >>> run.succeeded, run.seconds                      # doctest: +SKIP
    (True, 96.2)

Other clients (``ray job submit``, ``serve deploy``, ``ray list``) reach it with
``env=cluster.client_env()`` and ``--address cluster.dashboard_url``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from raycore.errors import ConfigurationError

__all__ = ["JobRun", "LocalCluster", "LocalNode", "free_port"]

# Ray's session folder holds unix sockets, whose paths may not exceed 107 bytes.
_MAX_ROOT_CHARS = 32
_NODE_NAME = re.compile(r"[a-z][a-z0-9_]{0,15}")
_AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS")


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalNode:
    """One node: its ``ray start --block`` process, its resources and its log."""

    name: str
    head: bool
    num_cpus: int
    resources: dict[str, float]
    process: subprocess.Popen[bytes]
    log: Path
    node_id: str | None = None
    killed_pids: list[int] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass(frozen=True)
class JobRun:
    """One ``ray job submit``: its ids, final status, exit code, wall time and output."""

    submission_id: str
    job_id: str | None
    status: str
    returncode: int
    seconds: float
    output: str

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0 and self.status == "SUCCEEDED"


class LocalCluster:
    """A head node and worker nodes on this machine, each with its own ports and resources.

    ``root`` (short: Ray's socket paths live under it) holds the session files,
    the token and each node's log. ``env`` is added to every node's environment
    (Ray workers inherit it: the place for ``FOUNDRY_HOME``, ``PYTHONPATH``).
    """

    def __init__(
        self,
        *,
        root: Path,
        env: dict[str, str] | None = None,
        object_store_mb: int = 150,
        start_timeout_s: float = 90.0,
    ) -> None:
        root = Path(root).resolve()
        if len(str(root)) > _MAX_ROOT_CHARS:
            raise ConfigurationError(
                f"cluster root {str(root)!r} is {len(str(root))} characters long, over {_MAX_ROOT_CHARS}",
                hint="Ray's unix socket paths live under it: use a short folder such as /tmp/fmn-1",
            )
        if object_store_mb < 75:
            raise ConfigurationError(
                f"object_store_mb ({object_store_mb}) must be at least 75 (Ray's minimum object store)",
                hint="give each node 75 MB or more",
            )
        self.root = root
        self.env = dict(env or {})
        self.object_store_mb = object_store_mb
        self.start_timeout_s = start_timeout_s
        self.token_path = root / "auth_token"
        self.gcs_port = 0
        self.dashboard_port = 0
        self.nodes: dict[str, LocalNode] = {}

    # ------------------------------------------------------------------ addresses and clients

    @property
    def address(self) -> str:
        """The GCS address nodes and drivers join (``ray.init(address=...)``)."""
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        """The dashboard / job / Serve REST address (``ray job submit --address``)."""
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def token(self) -> str:
        return self.token_path.read_text().strip()

    def client_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment for ``ray job submit`` / ``serve deploy`` clients of this cluster."""
        env = {
            k: v
            for k, v in (base if base is not None else os.environ).items()
            if k not in _AUTH_ENV
        }
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(self.token_path))
        return env

    def get(
        self, path: str, *, params: dict[str, Any] | None = None, timeout_s: float = 10.0
    ) -> Any:
        """GET a dashboard REST path with the cluster's token; return the JSON body."""
        r = httpx.get(
            f"{self.dashboard_url}{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=timeout_s,
        )
        r.raise_for_status()
        return r.json()

    def alive_nodes(self) -> list[dict[str, Any]]:
        """The nodes the cluster's GCS reports alive (state API rows: node_id, resources_total, ...)."""
        body = self.get(
            "/api/v0/nodes",
            params={
                "filter_keys": "state",
                "filter_predicates": "=",
                "filter_values": "ALIVE",
                "detail": "1",
            },
        )
        return list(body["data"]["result"]["result"])

    def actors(self, *, class_name: str | None = None, prefix: str = "") -> list[dict[str, Any]]:
        """Actors, alive or dead, of one class or whose class starts with ``prefix``.

        State API rows: ``actor_id``, ``class_name``, ``node_id``, ``job_id``, ``state``, ``pid``.
        """
        params = {"detail": "1", "limit": "10000"}
        if class_name is not None:
            params.update(filter_keys="class_name", filter_predicates="=", filter_values=class_name)
        rows = self.get("/api/v0/actors", params=params)["data"]["result"]["result"]
        return [r for r in rows if str(r.get("class_name", "")).startswith(prefix)]

    def node_name(self, node_id: str | None) -> str | None:
        """The name this cluster gave the node with ``node_id`` (None for an unknown id)."""
        return next((n.name for n in self.nodes.values() if n.node_id == node_id), None)

    def submit_job(
        self,
        entrypoint: list[str],
        *,
        working_dir: Path,
        env_vars: dict[str, str] | None = None,
        excludes: list[str] | None = None,
        timeout_s: float = 900.0,
    ) -> JobRun:
        """``ray job submit`` ``entrypoint`` with ``working_dir`` uploaded; wait for it to end.

        The wall time covers what a user waits for: upload, start, run, log streaming.
        """
        submission_id = f"foundry-{secrets.token_hex(4)}"
        runtime_env = {"env_vars": dict(env_vars or {}), "excludes": list(excludes or [])}
        command = [
            _ray_cli(), "job", "submit",
            "--address", self.dashboard_url,
            "--submission-id", submission_id,
            "--working-dir", str(working_dir),
            "--runtime-env-json", json.dumps(runtime_env),
            "--", *entrypoint,
        ]  # fmt: skip
        started = time.monotonic()
        try:
            done = subprocess.run(
                command, env=self.client_env(), capture_output=True, text=True, timeout=timeout_s
            )
            code, output = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired as exc:
            # The client gave up; the job would run on: stop it too.
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(
                    f"{self.dashboard_url}/api/jobs/{submission_id}/stop",
                    headers={"Authorization": f"Bearer {self.token}"},
                    timeout=10,
                )
            code = -1
            output = f"{_text(exc.stdout)}{_text(exc.stderr)}\n(timed out after {timeout_s:.0f}s)"
        seconds = time.monotonic() - started
        try:
            info = self.get(f"/api/jobs/{submission_id}")
        except httpx.HTTPError:
            info = {}
        return JobRun(
            submission_id=submission_id,
            job_id=info.get("job_id"),
            status=str(info.get("status", "UNKNOWN")),
            returncode=code,
            seconds=seconds,
            output=output,
        )

    def serve_deploy(self, config: dict[str, Any]) -> None:
        """``serve deploy`` a Serve config (the dict of a ``serve deploy`` YAML) to this cluster."""
        path = self.root / f"serve-{secrets.token_hex(4)}.yaml"
        path.write_text(json.dumps(config))  # JSON is YAML
        done = subprocess.run(
            [_serve_cli(), "deploy", str(path), "--address", self.dashboard_url],
            env=self.client_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise ConfigurationError(
                f"`serve deploy` failed ({done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}",
                hint="check the application's import path and args in the config",
            )

    # ------------------------------------------------------------------ nodes

    def start_head(
        self, *, num_cpus: int = 1, resources: dict[str, float] | None = None, name: str = "node_a"
    ) -> LocalNode:
        """Start the head node (GCS, dashboard, job server) and wait until it answers."""
        if self.nodes:
            raise ConfigurationError(
                "the head node is already started", hint="call start_head once"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.token_path.exists():
            self.token_path.write_text(secrets.token_hex(32))
            self.token_path.chmod(0o600)
        self.gcs_port, self.dashboard_port = free_port(), free_port()
        extra = [
            "--head",
            "--port", str(self.gcs_port),
            "--dashboard-host", "127.0.0.1",
            "--dashboard-port", str(self.dashboard_port),
            "--ray-client-server-port", str(free_port()),
        ]  # fmt: skip
        node = self._start(name, head=True, num_cpus=num_cpus, resources=resources, extra=extra)
        self._wait(node, lambda: self._dashboard_up() and self._node_alive(node))
        return node

    def add_node(
        self, name: str, *, num_cpus: int = 1, resources: dict[str, float] | None = None
    ) -> LocalNode:
        """Start a worker node that joins the head; return once the GCS lists it alive."""
        if not any(n.head for n in self.nodes.values()):
            raise ConfigurationError(
                f"cannot add node {name!r} before the head", hint="call start_head first"
            )
        if name in self.nodes and self.nodes[name].running:
            raise ConfigurationError(f"node {name!r} is already running", hint="pick another name")
        node = self._start(
            name,
            head=False,
            num_cpus=num_cpus,
            resources=resources,
            extra=["--address", self.address],
        )
        self._wait(node, lambda: self._node_alive(node))
        return node

    def node_pids(self, name: str) -> list[int]:
        """The running processes of node ``name``: its ``ray start``, raylet, agents, workers."""
        node = self._node(name)
        return [p for p in _node_processes(node.process.pid, root_alive=node.running) if _alive(p)]

    def kill_node(self, name: str) -> list[int]:
        """End every process of node ``name`` at once (SIGKILL): a machine failure, not a drain.

        Returns the pids that were killed. Only the node's own process tree is touched.
        """
        node = self._node(name)
        if node.head:
            raise ConfigurationError(
                "kill_node ends worker nodes only", hint="use shutdown() for the head"
            )
        node.killed_pids = _kill_tree(node.process, sig=signal.SIGKILL)
        return node.killed_pids

    def wait_node_dead(self, name: str, *, timeout_s: float = 120.0) -> float:
        """Block until the GCS no longer lists node ``name`` alive; return the seconds waited."""
        node = self._node(name)
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if not any(n["node_id"] == node.node_id for n in self.alive_nodes()):
                return time.monotonic() - started
            time.sleep(0.25)
        raise ConfigurationError(
            f"node {name!r} ({node.node_id}) is still listed alive after {timeout_s:.0f}s",
            hint="its processes may still run; check the node's log: " + str(node.log),
        )

    def shutdown(self) -> None:
        """Stop every node this cluster started (workers first, then the head)."""
        for node in sorted(self.nodes.values(), key=lambda n: n.head):
            if node.running or node.head:
                _kill_tree(node.process, sig=signal.SIGTERM, grace_s=5.0)
        # A process started while the first pass ran (a worker, a restarted agent) is still in
        # its node's session: end it too, so nothing writes under ``root`` any more.
        for node in self.nodes.values():
            for pid in _node_processes(node.process.pid, root_alive=node.running):
                if _alive(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    # ------------------------------------------------------------------ internals

    def _node(self, name: str) -> LocalNode:
        if name not in self.nodes:
            raise ConfigurationError(
                f"no node named {name!r}", hint=f"nodes: {', '.join(self.nodes) or 'none'}"
            )
        return self.nodes[name]

    def _start(
        self,
        name: str,
        *,
        head: bool,
        num_cpus: int,
        resources: dict[str, float] | None,
        extra: list[str],
    ) -> LocalNode:
        if num_cpus < 1:
            raise ConfigurationError(
                f"num_cpus ({num_cpus}) must be >= 1", hint="give each node at least one CPU"
            )
        command = [
            _ray_cli(), "start", "--block",
            *extra,
            "--node-ip-address", "127.0.0.1",
            "--num-cpus", str(num_cpus),
            "--resources", json.dumps(resources or {}),
            "--object-store-memory", str(self.object_store_mb * 2**20),
            "--node-manager-port", str(free_port()),
            "--object-manager-port", str(free_port()),
            "--runtime-env-agent-port", str(free_port()),
            "--dashboard-agent-grpc-port", str(free_port()),
            "--dashboard-agent-listen-port", str(free_port()),
            "--metrics-export-port", str(free_port()),
            # 0: every worker binds a port the OS picks, never one of another Ray's range.
            "--min-worker-port", "0", "--max-worker-port", "0",
            "--disable-usage-stats",
            # A session folder per node, as on separate machines: two raylets sharing one
            # would share runtime_resources/ and unpack a job's working_dir over each other.
            "--temp-dir", str(self.root / name),
        ]  # fmt: skip
        env = self.client_env()
        env.update(self.env)
        env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        # Workers are spawned by `ray start`'s raylet: the venv's bin first, so `python` is this one.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        log = self.root / f"{name}.log"
        self.root.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:
            process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        node = LocalNode(name, head, num_cpus, dict(resources or {}), process, log)
        self.nodes[name] = node
        return node

    def _wait(self, node: LocalNode, ready: Any) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if not node.running:
                raise ConfigurationError(
                    f"`ray start` of node {node.name!r} exited with {node.process.returncode}:\n{node.log_tail()}",
                    hint="read the node's log above; a port taken meanwhile is worth a retry",
                )
            try:
                if ready():
                    return
            except (httpx.HTTPError, OSError, KeyError, ValueError):
                pass  # not up yet
            time.sleep(0.5)
        _kill_tree(node.process, sig=signal.SIGKILL)
        raise ConfigurationError(
            f"node {node.name!r} did not join in {self.start_timeout_s:.0f}s:\n{node.log_tail()}",
            hint="the machine may be overloaded: raise start_timeout_s",
        )

    def _dashboard_up(self) -> bool:
        self.get("/api/version", timeout_s=2.0)
        return True

    def _node_alive(self, node: LocalNode) -> bool:
        # A node is ours when its resources carry the custom resource it was started with
        # (every node here is on 127.0.0.1, so the address does not tell them apart).
        known = {n.node_id for n in self.nodes.values() if n.node_id and n is not node}
        for row in self.alive_nodes():
            total = row.get("resources_total", {})
            if row["node_id"] in known:
                continue
            if (
                all(total.get(k) == v for k, v in node.resources.items())
                and bool(row.get("is_head_node")) == node.head
            ):
                node.node_id = row["node_id"]
                return True
        return False


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else value.decode(errors="replace")


def _ray_cli() -> str:
    """This environment's ``ray`` command (the venv's, next to this Python)."""
    found = Path(sys.executable).with_name("ray")
    return str(found) if found.exists() else "ray"


def _serve_cli() -> str:
    found = Path(sys.executable).with_name("serve")
    return str(found) if found.exists() else "serve"


def _node_processes(root_pid: int, *, root_alive: bool = True) -> list[int]:
    """Pids of ``root_pid``'s session and of its descendants (Linux ``/proc``), root first.

    ``ray start`` runs in a session of its own (``start_new_session``); the raylet gives
    each worker a process group of its own, but the session and the parent links stay.
    """
    parents: dict[int, int] = {}
    session: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # ended meanwhile
            continue
        # "pid (comm) state ppid pgrp session ...": comm may hold spaces, split after ")".
        fields = text[text.rindex(")") + 2 :].split()
        pid = int(text.split(" ", 1)[0])
        parents[pid], session[pid] = int(fields[1]), int(fields[3])
    if not root_alive:
        # The root was reaped: its pid may belong to another process by now. Only the
        # session's members are the node's (a session id is not reused while they live).
        return [pid for pid, sid in session.items() if sid == root_pid and pid != root_pid]
    found = [root_pid] if root_pid in parents else []
    frontier = [root_pid]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier and pid not in found]
        found.extend(children)
        frontier = children
    found.extend(pid for pid, sid in session.items() if sid == root_pid and pid not in found)
    return found


def _kill_tree(process: subprocess.Popen[bytes], *, sig: int, grace_s: float = 5.0) -> list[int]:
    """Signal ``process``'s session and descendants (found before signalling); SIGKILL what outlives ``grace_s``."""
    if not sys.platform.startswith("linux"):
        raise ConfigurationError(
            f"stopping one node's processes needs Linux /proc, not {sys.platform}",
            hint="run the local multi-node cluster on Linux",
        )
    pids = _node_processes(process.pid, root_alive=process.poll() is None)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    deadline = time.monotonic() + grace_s
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_s)
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return pids


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for its parent counts as ended)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2 :].split()[0] != "Z"
