"""`crossroads compose-local`: run a docker-compose file's services as local processes.

For trying the deployment (and testing it) on a machine without Docker. The compose file is read
with PyYAML, service by service:

- ``${VAR}``, ``${VAR:-default}`` and ``${VAR-default}`` are interpolated from the environment,
  as compose does; services of a profile that is not given with ``--profile`` are skipped.
- Every service host name maps to 127.0.0.1, and every port a service listens on (``ports:``,
  ``tcp://*:P`` binds, ``tcp://<service>:P`` references) gets a free local port; commands,
  environment values and health checks are rewritten to match.
- ``deploy.replicas`` starts that many processes; the image's ``crossroads`` entrypoint runs as
  ``python -m crossroads`` and its ``crossroads-health`` as ``python -m gameserver.health``;
  as the image sets ``CROSSROADS_HEALTH_FILE``, each service built from it gets its own file in
  the temporary directory (a service's replicas share it); a ``redis`` image runs the local
  ``redis-server`` (free port, data in a temporary directory).
- Services start in ``depends_on`` order; each one with a health check must pass it (the check's
  own command, run locally) before the next starts. Then a table of service -> PIDs and local
  endpoints is printed (``--json``: one JSON object on one line), then ``ready``.
- SIGINT/SIGTERM stop every process by PID (SIGTERM, then SIGKILL after a grace period).

Container environments do not inherit the host's, so ``CROSSROADS_*`` variables of the calling
shell reach the services only through the file's ``${...}`` interpolation.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gameserver.cli_numbers import positive
from gameserver.health import HEALTH_FILE_ENV
from loadtest.ports import free_ports

_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
#: Default bound on one service's health check passing.
HEALTH_TIMEOUT_S = 60.0
#: Pause between two attempts of a failing health check.
HEALTH_RETRY_S = 0.2
#: Grace between SIGTERM and SIGKILL at shutdown (the front drains in-flight actions first).
STOP_GRACE_S = 15.0
LOCAL_HOST = "127.0.0.1"
_SELF_HOSTS = {"*", "0.0.0.0", "127.0.0.1", "localhost", "[::]"}
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_]\w*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_]\w*)")
#: The image's commands, as modules of this package.
IMAGE_COMMANDS = {"crossroads": "crossroads", "crossroads-health": "gameserver.health"}
#: Metrics binds have no scheme, so the endpoint rewriting misses them.
METRICS_BIND_ENV = "CROSSROADS_METRICS_BIND"
# After "://", or after the "user:password@" of a URL such as redis://:PASSWORD@redis:6379/0.
_ENDPOINT = re.compile(r"(?:(?<=://)|(?<=@))(\*|\[::\]|[A-Za-z0-9_.-]+):(\d+)")


class ComposeError(Exception):
    """A compose file this command cannot run; the message says why."""


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """``value`` with ``${VAR:-default}``-style references replaced, recursively."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m[0] == "$$":
                return "$"
            name = m[1] or m[4]
            got = env.get(name)
            if m[2] == ":-" and not got:
                return m[3]
            if m[2] == "-" and got is None:
                return m[3]
            return got or ""

        return _VAR.sub(sub, value)
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    return value


def variables(text: str) -> set[str]:
    """The names of the variables a compose file's text interpolates."""
    return {m[1] or m[4] for m in _VAR.finditer(text) if m[0] != "$$"}


def load(path: Path, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The compose file's services, interpolated (YAML merge keys are resolved by PyYAML)."""
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ComposeError(f"cannot read {path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ComposeError(f"{path}: not UTF-8 text (offset {exc.start})") from None
    except yaml.YAMLError as exc:
        raise ComposeError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    services = doc.get("services") if isinstance(doc, dict) else None
    if not isinstance(services, dict) or not services:
        raise ComposeError(f"{path}: no services (a compose file maps 'services' to them)")
    for name, spec in services.items():
        if not isinstance(spec, dict):
            raise ComposeError(f"{path}: service {name!r} is not a mapping of its settings")
    return interpolate(services, env)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's error in one line: what is wrong, and where."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return problem
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"


def words(value: Any) -> list[str]:
    """A compose command/entrypoint (string or list) as an argument list."""
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def environment(spec: dict[str, Any]) -> dict[str, str]:
    env = spec.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def depends_on(spec: dict[str, Any]) -> list[str]:
    deps = spec.get("depends_on") or []
    return list(deps) if isinstance(deps, dict | list) else []


def active(services: dict[str, dict[str, Any]], profiles: list[str]) -> dict[str, dict]:
    """The services without a profile, plus those of a profile that was asked for."""
    return {
        name: spec
        for name, spec in services.items()
        if not spec.get("profiles") or set(spec["profiles"]) & set(profiles)
    }


def start_order(services: dict[str, dict[str, Any]]) -> list[str]:
    """Service names, dependencies first (dependencies on inactive services are ignored)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise ComposeError(f"dependency cycle: {' -> '.join((*path, name))}")
        if name in seen or name not in services:
            return
        for dep in depends_on(services[name]):
            visit(dep, (*path, name))
        seen.add(name)
        order.append(name)

    for name in services:
        visit(name, ())
    return order


def runs_here(spec: dict[str, Any]) -> bool:
    """Whether compose-local can run the service: a Crossroads image (built here, or given an
    entrypoint it finds on PATH) or redis; not someone else's image (Prometheus, Grafana)."""
    return "build" in spec or is_redis(spec) or bool(spec.get("entrypoint"))


def is_redis(spec: dict[str, Any]) -> bool:
    image = str(spec.get("image", "")).rsplit("/", 1)[-1]
    return image.startswith("redis") and "build" not in spec


def texts(spec: dict[str, Any]) -> list[str]:
    """Every string of a service in which endpoints are rewritten."""
    health = (spec.get("healthcheck") or {}).get("test") or []
    return [
        *words(spec.get("entrypoint")),
        *words(spec.get("command")),
        *environment(spec).values(),
        *words(health),
    ]


def container_ports(name: str, services: dict[str, dict[str, Any]]) -> set[int]:
    """The ports service ``name`` listens on, as far as the file tells."""
    spec = services[name]
    ports = {int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in spec.get("ports") or []}
    if is_redis(spec):
        ports.add(6379)
    for other, other_spec in services.items():
        for text in texts(other_spec):
            for host, port in _ENDPOINT.findall(text):
                if host == name or (other == name and host in _SELF_HOSTS):
                    ports.add(int(port))
    return ports


@dataclass
class Service:
    """One service's plan and its running processes."""

    name: str
    spec: dict[str, Any]
    ports: dict[int, int]  # container port -> local port
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def replicas(self) -> int:
        return int((self.spec.get("deploy") or {}).get("replicas", 1))

    def endpoints(self) -> dict[str, str]:
        return {str(c): f"tcp://{LOCAL_HOST}:{p}" for c, p in sorted(self.ports.items())}


class Plan:
    """The whole file mapped onto this machine: free ports, rewritten commands."""

    def __init__(
        self, services: dict[str, dict[str, Any]], workdir: Path, project: Path | None = None
    ) -> None:
        foreign = [n for n, spec in services.items() if not runs_here(spec)]
        if foreign:
            raise ComposeError(
                f"{', '.join(foreign)}: only Crossroads roles and redis run as local processes; "
                "run that profile under Docker"
            )
        self.workdir = workdir  # temporary: redis data
        self.project = project or Path.cwd()  # processes run here, as compose's project dir
        self.order = start_order(services)
        names = list(self.order)
        wanted = {n: sorted(container_ports(n, services)) for n in names}
        local = iter(free_ports(sum(len(p) for p in wanted.values())))
        self.services = {
            n: Service(n, services[n], {c: next(local) for c in wanted[n]}) for n in names
        }

    def rewrite(self, owner: str, text: str) -> str:
        """``text`` of service ``owner`` with service hosts and ports made local."""

        def sub(m: re.Match[str]) -> str:
            host, port = m[1], int(m[2])
            target = owner if host in _SELF_HOSTS else host
            service = self.services.get(target)
            if service is None or port not in service.ports:
                return m[0]
            return f"{LOCAL_HOST}:{service.ports[port]}"

        return _ENDPOINT.sub(sub, text)

    def rewrite_args(self, owner: str, argv: list[str]) -> list[str]:
        """Arguments rewritten; a bare service name right after a ``--...host`` flag too."""
        out: list[str] = []
        for word in argv:
            after_host_flag = bool(out) and out[-1].startswith("--") and out[-1].endswith("host")
            out.append(LOCAL_HOST if after_host_flag and word in self.services else word)
        return [self.rewrite(owner, w) for w in out]

    def command(self, service: Service) -> list[str]:
        spec = service.spec
        cmd = self.rewrite_args(service.name, words(spec.get("command")))
        if is_redis(spec):
            binary = shutil.which("redis-server")
            if binary is None:
                raise ComposeError(f"{service.name}: redis-server is not installed")
            args = cmd[1:] if cmd[:1] == ["redis-server"] else cmd
            data = self.workdir / service.name
            data.mkdir(exist_ok=True)
            port = str(service.ports[6379])
            local = ["--port", port, "--bind", LOCAL_HOST, "--dir", str(data), "--save", ""]
            return [binary, *args, *local]
        entry = self.rewrite_args(service.name, words(spec.get("entrypoint")))
        return self.executable(entry or ["crossroads"]) + cmd

    def executable(self, argv: list[str]) -> list[str]:
        """``argv`` runnable here: ``crossroads`` and ``crossroads-health`` are this package,
        the rest comes from PATH."""
        if argv[0] in IMAGE_COMMANDS:
            return [sys.executable, "-m", IMAGE_COMMANDS[argv[0]], *argv[1:]]
        found = shutil.which(argv[0])
        if found is None:
            raise ComposeError(f"{argv[0]!r} is not installed here")
        return [found, *argv[1:]]

    def healthcheck(self, service: Service) -> list[str] | None:
        """The service's health check as a local command, or None."""
        test = (service.spec.get("healthcheck") or {}).get("test")
        argv = words(test)
        if not argv or argv[0] == "NONE" or (service.spec["healthcheck"].get("disable")):
            return None
        if argv[0] in ("CMD", "CMD-SHELL"):
            argv = shlex.split(argv[1]) if argv[0] == "CMD-SHELL" else argv[1:]
        elif isinstance(test, str):
            argv = shlex.split(test)
        argv = self.rewrite_args(service.name, argv)
        if argv[0] == "redis-cli" and 6379 in service.ports:
            argv = [argv[0], "-h", LOCAL_HOST, "-p", str(service.ports[6379]), *argv[1:]]
        return self.executable(argv)

    def env(self, service: Service) -> dict[str, str]:
        """A clean environment (no inherited ``CROSSROADS_*``) plus the service's, rewritten."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSROADS_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        if "build" in service.spec:  # the image's own ENV, one file per service here
            env[HEALTH_FILE_ENV] = str(self.workdir / f"{service.name}.health")
            # The stack's volumes (cluster keys, relays' keys and known hosts) are one data
            # directory per run here, never the user's own.
            env["XDG_DATA_HOME"] = str(self.workdir / "data")
        for key, value in environment(service.spec).items():
            env[key] = self.rewrite(service.name, value)
        if env.get(METRICS_BIND_ENV):  # one fixed port per container; here, any free one each
            env[METRICS_BIND_ENV] = f"{LOCAL_HOST}:0"
        return env


class Runner:
    """Starts the plan's processes, checks their health, and stops them all by PID."""

    def __init__(self, plan: Plan, health_timeout: float) -> None:
        self.plan = plan
        self.health_timeout = health_timeout
        self.stopping = False

    def all_processes(self) -> list[tuple[str, subprocess.Popen[bytes]]]:
        return [(s.name, p) for s in self.plan.services.values() for p in s.processes]

    def start(self) -> None:
        for name in self.plan.order:
            service = self.plan.services[name]
            argv, env = self.plan.command(service), self.plan.env(service)
            for _ in range(service.replicas):
                if self.stopping:
                    return
                service.processes.append(
                    subprocess.Popen(
                        argv,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=sys.stderr,  # our stdout is the operator's table
                        stderr=sys.stderr,
                        cwd=self.plan.project,
                        start_new_session=True,  # Ctrl-C reaches us only; we stop them in order
                    )
                )
            self.wait_healthy(service)

    def wait_healthy(self, service: Service) -> None:
        check = self.plan.healthcheck(service)
        if check is None:
            return
        env = self.plan.env(service)
        deadline = time.monotonic() + self.health_timeout
        while not self.stopping:
            dead = [p for p in service.processes if p.poll() is not None]
            if dead:
                raise ComposeError(f"{service.name} exited with {dead[0].returncode}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise ComposeError(f"{service.name}: health check never passed: {check}")
            try:
                done = subprocess.run(
                    check,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=left,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                continue
            if done.returncode == 0:
                return
            time.sleep(HEALTH_RETRY_S)  # retry pacing, not synchronisation

    def stop(self) -> None:
        """SIGTERM every process by PID, dependents first; SIGKILL whatever outlives the grace."""
        procs = [p for _, p in reversed(self.all_processes())]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def status(self) -> dict[str, Any]:
        return {
            "services": {
                s.name: {
                    "pids": [p.pid for p in s.processes],
                    "ports": {str(c): p for c, p in sorted(s.ports.items())},
                    "endpoints": s.endpoints(),
                }
                for s in self.plan.services.values()
            },
            "workdir": str(self.plan.workdir),
        }


def table(status: dict[str, Any]) -> str:
    rows = [("service", "pids", "endpoints (container port -> local)")]
    for name, info in status["services"].items():
        eps = ", ".join(f"{c} -> {e}" for c, e in info["endpoints"].items()) or "-"
        rows.append((name, " ".join(map(str, info["pids"])), eps))
    w0, w1 = (max(len(r[i]) for r in rows) for i in (0, 1))
    return "\n".join(f"{a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows)


def build_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Start a docker-compose file's services as local processes (no Docker): "
        "service hosts become 127.0.0.1, ports become free local ones, replicas become "
        "processes, redis runs as a local redis-server. Ctrl-C stops everything.",
    )
    parser.add_argument(
        "--file", "-f", type=Path, default=Path("docker-compose.yml"), help="compose file"
    )
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="NAME",
        help="also run the services of this profile (repeatable)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the status as one JSON line, not a table"
    )
    parser.add_argument(
        "--health-timeout",
        type=positive(float),
        default=HEALTH_TIMEOUT_S,
        metavar="SECONDS",
        help=f"how long each service may take to pass its health check ({HEALTH_TIMEOUT_S:g})",
    )
    return parser


def main(argv: list[str], prog: str = "crossroads compose-local") -> int:
    args = build_parser(prog).parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="crossroads-compose-") as tmp:
        try:
            services = active(load(args.file, dict(os.environ)), args.profile)
            plan = Plan(services, Path(tmp), args.file.resolve().parent)
            runner = Runner(plan, args.health_timeout)
        except ComposeError as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            return 2

        def on_signal(signum: int, frame: object) -> None:
            runner.stopping = True

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, on_signal)
        code = 0
        try:
            runner.start()
            if not runner.stopping:
                status = runner.status()
                print(json.dumps(status) if args.json else table(status), flush=True)
                print("ready; Ctrl-C to stop", flush=True)
            reported: set[int] = set()
            while not runner.stopping:
                for name, proc in runner.all_processes():
                    if proc.poll() is not None and proc.pid not in reported:
                        reported.add(proc.pid)
                        print(f"exited {name} pid {proc.pid} code {proc.returncode}", flush=True)
                time.sleep(0.2)  # supervision poll
        except ComposeError as exc:
            print(f"{prog}: {exc}", file=sys.stderr)
            code = 1
        finally:
            runner.stop()
        print("stopped", flush=True)
        return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
