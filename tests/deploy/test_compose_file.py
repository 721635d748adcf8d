"""Static checks of the deployment files: every compose command is a valid `crossroads`
invocation, every variable is read by the code or documented as compose-only, profiles and the
port plan of `compose-local` behave, and every container is hardened, limited, health-checked
and pinned."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml
from deploykit import COMPOSE_FILE, REPO_ROOT, clean_env

from crossroads import compose_local as cl
from gameserver import health
from gameserver.settings import Settings, env_name

SETTINGS_VARS = {env_name(name) for name in Settings.model_fields}
TEXT = COMPOSE_FILE.read_text()
HEADER = "\n".join(line for line in TEXT.splitlines() if line.startswith("#"))
SERVICES = cl.load(COMPOSE_FILE, clean_env())
DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
BUILD_SCRIPT = (REPO_ROOT / "deploy" / "build-images").read_text()
VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]


def crossroads_commands() -> list[tuple[str, list[str]]]:
    found = []
    for name, spec in SERVICES.items():
        entry = cl.words(spec.get("entrypoint")) or (["crossroads"] if "build" in spec else [])
        if entry == ["crossroads"]:
            found.append((name, cl.words(spec.get("command"))))
        health = cl.words((spec.get("healthcheck") or {}).get("test"))
        if health[1:2] == ["crossroads"]:
            found.append((f"{name} healthcheck", health[2:]))
    return found


@pytest.mark.parametrize(("where", "args"), crossroads_commands(), ids=lambda v: str(v))
def test_every_crossroads_command_is_valid(where: str, args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "crossroads", *args, "--help"],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=REPO_ROOT,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, (where, args, done.stderr)


def test_non_crossroads_services_are_only_optional() -> None:
    for name, spec in SERVICES.items():
        entry = cl.words(spec.get("entrypoint"))
        if entry and entry != ["crossroads"]:
            assert spec.get("profiles"), f"{name} runs {entry} outside a profile"


def test_every_environment_variable_is_read_by_the_code() -> None:
    locustfile = (REPO_ROOT / "loadtest" / "locustfile.py").read_text()
    for name, spec in SERVICES.items():
        if spec.get("profiles") == ["monitoring"]:
            assert not cl.environment(spec), f"{name}: configured by its files in deploy/"
            continue
        for var in set(cl.environment(spec)) - SETTINGS_VARS:
            assert spec.get("profiles") == ["loadtest"], f"{name} sets {var}, which nothing reads"
            assert f'"{var}"' in locustfile, f"{name} sets {var}, which the locustfile ignores"


def test_every_interpolated_variable_is_a_setting_or_documented() -> None:
    names = cl.variables(TEXT)
    assert names, "the compose file should take its settings from the environment"
    for var in names - SETTINGS_VARS:
        assert var in HEADER, f"${{{var}}} is neither a setting nor documented in the header"
    for var in names:
        assert f"${{{var}:-" in TEXT, f"${{{var}}} has no default"


def test_front_and_worker_topology() -> None:
    front, worker = SERVICES["front"], SERVICES["worker"]
    assert cl.words(front["command"])[:3] == ["serve", "--workers", "0"]
    # Player ports speak CURVE: the health check asks the key announcement (no CURVE in it).
    assert cl.words(front["healthcheck"]["test"])[1:4] == [
        "crossroads-health",
        "key",
        "tcp://127.0.0.1:7300",
    ]
    assert int(worker["deploy"]["replicas"]) == 3
    assert cl.environment(worker)["CROSSROADS_FRONT"] == "tcp://front:7303"
    store = "redis://:crossroads-redis@redis:6379/0"  # the password's default
    assert cl.environment(worker)["CROSSROADS_STORE"] == store
    assert cl.environment(front)["CROSSROADS_STORE"] == store
    redis = yaml.safe_load(TEXT)["services"]["redis"]
    assert "--appendonly" in redis["command"] and redis["volumes"]
    command = cl.words(SERVICES["redis"]["command"])
    assert command[command.index("--requirepass") + 1] == "crossroads-redis"
    assert "--protected-mode" not in command


def test_key_ports_are_published_beside_the_action_ports() -> None:
    """Players find a key one port below the action port: the front's 7300, each relay's 7310,
    published one below its published action port."""
    front = [str(p) for p in SERVICES["front"]["ports"]]
    assert any(p.endswith(":7300:7300") for p in front) and any(":7301:7301" in p for p in front)
    assert cl.environment(SERVICES["front"])["CROSSROADS_KEY_BIND"] == "tcp://*:7300"
    for name, key_port in (("relay-eu", 7320), ("relay-nz", 7330)):
        spec = SERVICES[name]
        ports = [str(p) for p in spec["ports"]]
        assert any(p.endswith(f":{key_port}:7310") for p in ports), ports
        assert any(p.endswith(f":{key_port + 1}:7311") for p in ports), ports
        args = cl.words(spec["command"])
        assert args[args.index("--upstream-key-endpoint") + 1] == "tcp://front:7300"
        assert args[args.index("--key-bind") + 1] == "tcp://*:7310"
        assert "--insecure-players" not in args
        assert any(":/home/crossroads/.local/share/crossroads" in v for v in spec["volumes"])


def test_profiles_and_port_plan(tmp_path: Path) -> None:
    default = cl.active(SERVICES, [])
    assert "locust-master" not in default and "front" in default
    assert {"locust-master", "locust-worker"} <= set(cl.active(SERVICES, ["loadtest"]))
    plan = cl.Plan(default, tmp_path)
    assert plan.order.index("redis") < plan.order.index("front") < plan.order.index("worker")
    ports = [p for s in plan.services.values() for p in s.ports.values()]
    assert len(ports) == len(set(ports))
    worker = plan.env(plan.services["worker"])
    assert worker["CROSSROADS_FRONT"] == f"tcp://127.0.0.1:{plan.services['front'].ports[7303]}"
    relay = plan.command(plan.services["relay-nz"])
    assert f"tcp://127.0.0.1:{plan.services['front'].ports[7302]}" in relay
    assert relay[:4] == [sys.executable, "-m", "crossroads", "relay"]


def test_interpolation_follows_compose() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert cl.interpolate("${SET:-d} ${EMPTY:-d} ${EMPTY-d} ${NOPE-d} $$SET $SET", env) == (
        "x d  d $SET x"
    )


def health_checks() -> list[tuple[str, list[str]]]:
    found = []
    for name, spec in SERVICES.items():
        test = cl.words((spec.get("healthcheck") or {}).get("test"))
        if test[1:2] == ["crossroads-health"]:
            found.append((name, test[2:]))
    return found


@pytest.mark.parametrize(("service", "args"), health_checks(), ids=lambda v: str(v))
def test_every_health_check_is_valid(service: str, args: list[str]) -> None:
    _, target, _, quiet = health.parse(args)
    assert quiet, "a health check's output only fills Docker's log"
    assert target is None or target.startswith("tcp://127.0.0.1:")


def test_every_long_running_service_has_a_cheap_health_check() -> None:
    checked = {name for name, _ in health_checks()}
    assert checked == {"front", "worker", "relay-eu", "relay-nz"}
    redis_check = cl.words(SERVICES["redis"]["healthcheck"]["test"])
    assert redis_check[:2] == ["CMD", "redis-cli"] and redis_check[-1] == "ping"
    for name in ("locust-master", "locust-worker"):
        assert SERVICES[name]["healthcheck"] == {"disable": True}
    relay = next(args for name, args in health_checks() if name == "relay-nz")
    assert relay[:2] == ["relay", "tcp://127.0.0.1:7319"]  # its stats port: upstream state


def test_metrics_stay_on_the_compose_network() -> None:
    """Every long-running Crossroads role serves /metrics on 9300, which no service publishes;
    Prometheus scrapes each of them, and the monitoring UIs are published on loopback only."""
    roles = [n for n, s in SERVICES.items() if "build" in s and not s.get("profiles")]
    assert set(roles) == {"front", "worker", "relay-eu", "relay-nz"}
    for name in roles:
        assert cl.environment(SERVICES[name])["CROSSROADS_METRICS_BIND"] == "0.0.0.0:9300", name
    published = [str(p) for s in SERVICES.values() for p in s.get("ports") or []]
    assert not any(p.endswith(":9300") for p in published)
    config = yaml.safe_load((REPO_ROOT / "deploy" / "prometheus.yml").read_text())
    targets = {
        t
        for job in config["scrape_configs"]
        for c in job.get("static_configs", [])
        for t in c["targets"]
    }
    assert targets == {"front:9300", "relay-eu:9300", "relay-nz:9300"}
    workers = [job for job in config["scrape_configs"] if job.get("dns_sd_configs")]
    assert workers[0]["dns_sd_configs"][0] == {
        "names": ["worker"],
        "type": "A",
        "port": 9300,
        "refresh_interval": "15s",
    }
    for name in ("prometheus", "grafana"):
        assert SERVICES[name]["profiles"] == ["monitoring"]
        assert all(str(p).startswith("127.0.0.1:") for p in SERVICES[name]["ports"])
    mounts = " ".join(SERVICES["grafana"]["volumes"])
    assert "./deploy/grafana/dashboards:" in mounts and "./deploy/grafana/provisioning:" in mounts


def test_compose_local_refuses_the_monitoring_images_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(cl.ComposeError, match=r"^prometheus, grafana: only Crossroads roles"):
        cl.Plan(cl.active(SERVICES, ["monitoring"]), tmp_path)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("services: [1, 2\n", "not valid YAML: expected ',' or ']'"),
        ("a: b: c\n", "not valid YAML: mapping values are not allowed here (line 1, column 5)"),
        ("just text", "no services"),
        ("services:\n  front: 5\n", "service 'front' is not a mapping"),
        ("", "no services"),
        (b"services:\n  \xb1\x87\n", "not UTF-8 text (offset 12)"),  # was a traceback
    ],
)
def test_a_file_that_is_no_compose_file_is_one_line(
    tmp_path: Path, text: str | bytes, words: str
) -> None:
    path = tmp_path / "compose.yml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(cl.ComposeError) as refused:
        cl.load(path, {})
    assert words in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize("bad", ["0", "-1", "soon"])
def test_a_bad_health_timeout_is_refused_before_anything_starts(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        cl.main(["--file", str(COMPOSE_FILE), "--health-timeout", bad])
    assert exc.value.code == 2
    assert "--health-timeout" in capsys.readouterr().err


def test_front_outlives_its_drain_before_sigkill() -> None:
    drain = float(cl.environment(SERVICES["front"])["CROSSROADS_DRAIN_TIMEOUT"])
    grace = SERVICES["front"]["stop_grace_period"]
    assert grace.endswith("s") and float(grace[:-1]) >= drain + 5


def test_every_container_is_hardened_limited_and_rotates_logs() -> None:
    for name, spec in SERVICES.items():
        assert spec.get("read_only") is True, name
        assert any(str(t).startswith("/tmp") for t in spec.get("tmpfs", [])), name
        assert spec.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in spec.get("security_opt", []), name
        assert spec.get("mem_limit") and spec.get("pids_limit"), name
        logging = spec.get("logging") or {}
        assert logging.get("driver") == "json-file", name
        assert logging["options"]["max-size"] and logging["options"]["max-file"], name


def test_locust_ui_is_published_on_loopback_only() -> None:
    ports = [str(p) for p in SERVICES["locust-master"]["ports"]]
    assert ports and all(p.startswith("127.0.0.1:") for p in ports)


def test_no_floating_image_tags() -> None:
    for name, spec in SERVICES.items():
        image = str(spec["image"])
        repository, _, tag = image.rpartition(":")
        assert repository and tag not in ("", "latest"), f"{name}: {image}"
        # A tag that pins something: the project's version or an exact upstream release.
        assert re.fullmatch(r"\d+\.\d+\.\d+(-\w+)?", tag), f"{name}: {image} floats"
    assert SERVICES["front"]["image"] == f"crossroads:{VERSION}"
    assert SERVICES["locust-master"]["image"] == f"crossroads-loadtest:{VERSION}"


def test_base_images_agree_between_dockerfile_script_and_compose() -> None:
    python_base = re.search(r'^PYTHON_BASE="(.+)"$', BUILD_SCRIPT, re.M)[1]
    redis_base = re.search(r'^REDIS_BASE="(.+)"$', BUILD_SCRIPT, re.M)[1]
    assert f"ARG PYTHON_IMAGE={python_base}\n" in DOCKERFILE
    assert SERVICES["redis"]["image"] == redis_base


def dockerfile_stages() -> dict[str, tuple[str, str]]:
    """Stage name -> (the stage it is FROM, its text)."""
    parts = re.split(r"^FROM (\S+) AS (\S+)$", DOCKERFILE, flags=re.M)
    return {parts[i + 1]: (parts[i], parts[i + 2]) for i in range(1, len(parts), 3)}


def stage_sources(stages: dict[str, tuple[str, str]], name: str) -> set[str]:
    """Every stage whose files end up in stage ``name`` (FROM and COPY --from)."""
    parent, body = stages[name]
    found = {name}
    for source in [parent, *re.findall(r"COPY --from=(\S+)", body)]:
        if source in stages:
            found |= stage_sources(stages, source)
    return found


def test_each_role_installs_its_own_lock_from_the_wheelhouse_only() -> None:
    stages = dict(dockerfile_stages())
    server = "".join(stages[s][1] for s in stage_sources(stages, "server"))
    loadtest = "".join(stages[s][1] for s in stage_sources(stages, "loadtest"))
    assert "server.lock" in server and "loadtest.lock" not in server
    assert "loadtest.lock" in loadtest
    installs = re.findall(r"pip install ([^&]+)", DOCKERFILE)
    assert installs and all("--no-index" in line for line in installs)
    assert sum("--require-hashes" in line for line in installs) == 2  # both locks, hash-checked
    assert (
        "\nUSER crossroads" in stages["server"][1] and "\nUSER crossroads" in stages["loadtest"][1]
    )
    assert 'ENTRYPOINT ["crossroads"]' in stages["server"][1]
    assert 'CMD ["crossroads-health", "file", "--quiet"]' in stages["server"][1]


def test_dockerignore_sends_only_what_the_build_copies() -> None:
    lines = (REPO_ROOT / ".dockerignore").read_text().split("\n")
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*"
    copied = re.findall(r"^COPY (?!--from)(\S+)", DOCKERFILE, re.M)
    allowed = [rule[1:].rstrip("/") for rule in rules[1:] if rule.startswith("!")]
    assert len(allowed) == len(rules) - 1
    for source in copied:
        assert any(fnmatch(source.rstrip("/"), pattern) for pattern in allowed), source
