"""The pure parts of ``make compose-check`` (tools/deploycheck): the stand-ins' translations of the
compose file's own command lines, the override, and the verdicts that make the check fail."""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploycheck import compose as composing
from deploycheck.check import parse_size
from deploycheck.healthloop import schedule
from deploycheck.images import STAND_INS, dockerfile_bases, normalize, repository, stand_in_for
from deploycheck.report import duration, human_bytes
from deploycheck.shims import console, mongosh, redpanda, rpk
from deploycheck.wiring import unknown_hosts

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def substitute(text: str) -> str:
    """``${NAME:-default}`` -> default (what compose makes of the file with nothing set)."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", text)


# --- the Kafka stand-in runs Redpanda's command line from docker-compose.yml ------------------------


def test_redpanda_command_of_the_compose_file_becomes_kafka_listeners():
    argv = [substitute(a) for a in COMPOSE["services"]["redpanda"]["command"]]
    assert argv[:2] == ["redpanda", "start"]
    config, heap_mb, level = redpanda.kafka_config(argv[2:], Path("/data"))
    assert config["listeners"] == "INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:19092,CONTROLLER://127.0.0.1:19093"
    assert config["advertised.listeners"] == "INTERNAL://redpanda:9092,EXTERNAL://127.0.0.1:9092"
    assert config["inter.broker.listener.name"] == "INTERNAL"
    assert config["listener.security.protocol.map"] == "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert (heap_mb, level) == (512, "WARN")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kafka-addr=internal://0.0.0.0:9092", "--advertise-kafka-addr=external://x:1"], "EXTERNAL"),
        (["--kafka-adr=0.0.0.0:9092"], "not known"),
        (["--kafka-addr=internal://0.0.0.0"], "host:port"),
        (["--kafka-addr"], "needs a value"),
        (["start"], "unexpected argument"),
        (["--default-log-level=loud"], "loud"),
        (["--memory=lots"], "size"),
    ],
)
def test_redpanda_flags_it_cannot_translate_stop_it(args: list[str], message: str):
    with pytest.raises(redpanda.RedpandaArgsError, match=message):
        redpanda.kafka_config(args)


@pytest.mark.parametrize(("memory", "heap"), [(None, 512), ("1G", 512), ("512M", 256), ("8G", 1024), ("300", 256)])
def test_heap_is_half_of_redpandas_memory_within_bounds(memory: str | None, heap: int):
    assert redpanda.heap_megabytes(memory) == heap


def test_cluster_ids_are_kraft_shaped():
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", redpanda.cluster_id())


# --- rpk: the compose file's health check and topic-init ------------------------------------------


def metadata_answer(correlation: int, leaders: dict[tuple[str, int], int], brokers: int = 1) -> bytes:
    def string(s: str) -> bytes:
        return struct.pack(">h", len(s)) + s.encode()

    out = struct.pack(">ii", correlation, 0) + struct.pack(">i", brokers)
    for node in range(brokers):
        out += struct.pack(">i", node) + string("redpanda") + struct.pack(">ih", 9092, -1)
    out += string("cluster") + struct.pack(">i", 0)
    topics: dict[str, list[tuple[int, int]]] = {}
    for (topic, partition), leader in leaders.items():
        topics.setdefault(topic, []).append((partition, leader))
    out += struct.pack(">i", len(topics))
    for topic, parts in topics.items():
        out += struct.pack(">h", 0) + string(topic) + struct.pack(">b", 0) + struct.pack(">i", len(parts))
        for partition, leader in parts:
            out += struct.pack(">hii", 0, partition, leader) + struct.pack(">ii", 1, 0) + struct.pack(">ii", 1, 0)
    return out


def test_metadata_request_is_a_v4_request_for_all_topics():
    request = rpk.metadata_request(7, "c")
    size, key, version, correlation, client_len = struct.unpack_from(">ihhih", request)
    assert (size, key, version, correlation, client_len) == (len(request) - 4, 3, 4, 7, 1)
    assert request.endswith(struct.pack(">ib", -1, 0))


def test_health_report_passes_the_compose_health_check_only_when_healthy():
    check = next(t for t in COMPOSE["services"]["redpanda"]["healthcheck"]["test"] if "rpk" in t)
    pattern = re.search(r"grep -Eq '(.+)'", check).group(1).replace("[[:space:]]", r"\s")  # type: ignore[union-attr]
    healthy = rpk.parse_metadata(metadata_answer(1, {("btc-metrics", 0): 0, ("btc-metrics", 1): 0}), 1)
    assert healthy.cluster_id == "cluster" and healthy.brokers == [(0, "redpanda", 9092)]
    assert re.search(pattern, rpk.health_report(healthy))
    leaderless = rpk.parse_metadata(metadata_answer(1, {("btc-metrics", 0): -1}), 1)
    assert leaderless.leaderless == [("btc-metrics", 0)]
    assert not re.search(pattern, rpk.health_report(leaderless))
    assert not re.search(pattern, rpk.health_report(rpk.parse_metadata(metadata_answer(1, {}, brokers=0), 1)))


@pytest.mark.parametrize("cut", [3, 10, 30])
def test_truncated_metadata_is_an_error(cut: int):
    with pytest.raises(ValueError, match="truncated"):
        rpk.parse_metadata(metadata_answer(1, {("t", 0): 0})[:cut], 1)


def test_metadata_for_another_request_is_refused():
    with pytest.raises(ValueError, match="another request"):
        rpk.parse_metadata(metadata_answer(2, {}), 1)


def test_topic_init_command_line_of_the_compose_file_parses():
    script = COMPOSE["services"]["topic-init"]["command"][0]
    line = next(x for x in script.splitlines() if "rpk topic create" in x)
    words = line.split("rpk ", 1)[1].split(" 2>&1")[0].replace('"', "").replace("$$1", "btc-metrics")
    cmd = rpk.parse_args(words.replace("$$2", "3").split())
    assert cmd.words == ["topic", "create", "btc-metrics"]
    assert (cmd.partitions, cmd.replicas, cmd.configs, cmd.brokers) == (
        3,
        1,
        ["max.message.bytes=2097152"],
        "redpanda:9092",
    )


@pytest.mark.parametrize("argv", [["cluster", "info"], ["topic", "delete", "x"], ["topic", "create", "x", "--bogus"]])
def test_rpk_commands_it_does_not_implement_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]):
    assert rpk.main(argv) == 2
    assert "stand-in" in capsys.readouterr().err


def test_rpk_health_of_nothing_listening_fails(capsys: pytest.CaptureFixture[str]):
    from devstack.processes import free_port

    assert rpk.main(["cluster", "health", "-X", f"brokers=127.0.0.1:{free_port()}"]) == 1
    assert "unable to request cluster health" in capsys.readouterr().err


# --- mongosh and the console stub -------------------------------------------------------------------


def test_mongosh_stand_in_accepts_the_compose_health_check():
    test = COMPOSE["services"]["mongodb"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "mongosh"]
    assert mongosh.parse(test[2:])[1] is True


@pytest.mark.parametrize(
    "argv", [["--eval", "db.dropDatabase()"], ["--quiet"], ["--eval", "db.adminCommand('ping')", "-u", "x"]]
)
def test_mongosh_stand_in_runs_no_javascript(argv: list[str]):
    with pytest.raises(ValueError, match=r"not implemented|only --eval"):
        mongosh.parse(argv)


def test_console_brokers():
    assert console.brokers(COMPOSE["services"]["redpanda-console"]["environment"]["KAFKA_BROKERS"]) == [
        ("redpanda", 9092)
    ]
    with pytest.raises(ValueError, match="host:port"):
        console.brokers("redpanda")
    with pytest.raises(ValueError, match="empty"):
        console.brokers(" ")


# --- images ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "normal", "repo"),
    [
        ("postgres:16.4", "docker.io/library/postgres:16.4", "docker.io/library/postgres"),
        ("apache/airflow:3.3.2-python3.11", "docker.io/apache/airflow:3.3.2-python3.11", "docker.io/apache/airflow"),
        ("localhost:5000/x/y:1", "localhost:5000/x/y:1", "localhost:5000/x/y"),
        ("docker.redpanda.com/redpandadata/redpanda:v24.2.18", None, "docker.redpanda.com/redpandadata/redpanda"),
    ],
)
def test_image_names_are_read_as_docker_reads_them(image: str, normal: str | None, repo: str):
    assert normalize(image) == (normal or image)
    assert repository(image) == repo


def test_every_image_the_deployment_names_has_a_stand_in():
    images = {s["image"] for s in COMPOSE["services"].values() if "build" not in s}
    images |= {b for f in ("Dockerfile", "dashboard/Dockerfile") for b in dockerfile_bases(ROOT / f)}
    assert {stand_in_for(i).name for i in images} == {s.name for s in STAND_INS}
    for standin in STAND_INS:
        assert (ROOT / "tools" / "deploycheck" / "standins" / standin.name / "Containerfile").is_file()
        assert f"## `{standin.name}`" in (ROOT / "tools" / "deploycheck" / "standins" / "README.md").read_text()


def test_an_image_without_stand_in_is_refused_by_name():
    from deploycheck.host import HostError

    with pytest.raises(HostError, match="redis:7"):
        stand_in_for("redis:7")


def test_dockerfile_bases_skip_build_stages(tmp_path: Path):
    f = tmp_path / "Dockerfile"
    f.write_text("FROM --platform=linux/amd64 python:3.11 AS build\nRUN x\nFROM build\nFROM debian:12 as other\n")
    assert dockerfile_bases(f) == ["python:3.11", "debian:12"]


# --- the override and the verdicts ---------------------------------------------------------------


CONFIG: dict[str, Any] = {
    "name": "btc-pipeline",
    "services": {
        "redpanda": {"image": "docker.redpanda.com/redpandadata/redpanda:v24.2.18", "healthcheck": {"test": ["x"]}},
        "topic-init": {"image": "docker.redpanda.com/redpandadata/redpanda:v24.2.18"},
        "postgres": {"image": "postgres:16.4", "healthcheck": {"test": ["x"]}},
        "airflow-init": {"image": "btc-pipeline-airflow:0.1.0", "build": {"context": "."}, "environment": {}},
        "airflow-scheduler": {
            "image": "btc-pipeline-airflow:0.1.0",
            "build": {"context": "."},
            "environment": {"BTC_COINBASE_URL": "https://api.exchange.coinbase.com", "BTC_KRAKEN_URL": "k"},
            "depends_on": {
                "airflow-init": {"condition": "service_completed_successfully"},
                "topic-init": {"condition": "service_completed_successfully"},
                "postgres": {"condition": "service_healthy"},
            },
        },
    },
}


def test_override_swaps_only_unreachable_images_and_points_exchange_urls_at_the_simulator():
    swaps = {"docker.redpanda.com/redpandadata/redpanda:v24.2.18": "localhost/standin/kafka:abc"}
    services = composing.override(CONFIG, swaps, "sim:1")["services"]
    assert services["redpanda"] == {"image": "localhost/standin/kafka:abc"}
    assert services["topic-init"] == {"image": "localhost/standin/kafka:abc"}
    assert "postgres" not in services and "airflow-init" not in services
    assert services["airflow-scheduler"] == {
        "environment": {
            "BTC_COINBASE_URL": "http://simexchange:8090/coinbase",
            "BTC_KRAKEN_URL": "http://simexchange:8090/kraken/0",
        }
    }
    assert services["simexchange"]["image"] == "sim:1"
    assert services["simexchange"]["healthcheck"]["test"][0] == "CMD-SHELL"
    assert composing.exchange_url_services(CONFIG) == ["airflow-scheduler"]


def test_override_of_the_real_file_reaches_every_service_that_reads_exchange_urls():
    readers = {n for n, s in COMPOSE["services"].items() if "BTC_COINBASE_URL" in (s.get("environment") or {})}
    assert {"airflow-scheduler", "airflow-apiserver", "dashboard", "api"} <= readers
    assert set(composing.exchange_url_services(COMPOSE)) == readers


def states(**overrides: composing.ServiceState) -> list[composing.ServiceState]:
    base = {
        "redpanda": composing.ServiceState("redpanda", "running", "healthy"),
        "topic-init": composing.ServiceState("topic-init", "exited", "", 0),
        "postgres": composing.ServiceState("postgres", "running", "healthy"),
        "airflow-init": composing.ServiceState("airflow-init", "exited", "", 0),
        "airflow-scheduler": composing.ServiceState("airflow-scheduler", "running", ""),
    }
    base.update(overrides)
    return list(base.values())


def test_verdict_all_fine():
    assert composing.verdict(CONFIG, states()).ok


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        (
            {"topic-init": composing.ServiceState("topic-init", "exited", "", 1)},
            "topic-init: one-shot job exited, exit code 1",
        ),
        ({"airflow-init": composing.ServiceState("airflow-init", "running", "")}, "airflow-init: one-shot job running"),
        ({"postgres": composing.ServiceState("postgres", "running", "unhealthy")}, "postgres: unhealthy"),
        ({"postgres": composing.ServiceState("postgres", "running", "starting")}, "postgres: starting"),
        ({"redpanda": composing.ServiceState("redpanda", "exited", "", 137)}, "redpanda: exited (exit code 137)"),
        ({"airflow-scheduler": composing.ServiceState("airflow-scheduler", "running", "unhealthy")}, "unhealthy"),
    ],
)
def test_verdict_names_what_is_wrong(override: dict[str, composing.ServiceState], problem: str):
    verdict = composing.verdict(CONFIG, states(**override))
    assert not verdict.ok
    assert any(problem in p for p in verdict.problems), verdict.problems


def test_verdict_a_missing_container_is_a_problem():
    verdict = composing.verdict(CONFIG, [s for s in states() if s.service != "postgres"])
    assert verdict.problems == ["postgres: no container"]


def test_ps_output_in_lines_or_as_an_array():
    line = '{"Service": "api", "State": "running", "Health": "healthy", "ExitCode": 0}'
    assert composing.parse_ps(line + "\n" + line) == composing.parse_ps(f"[{line},{line}]")
    assert composing.parse_ps("") == []


def test_compose_refusal_of_a_missing_variable_is_read():
    out = "error while interpolating services.x: required variable MONGO_ROOT_PASSWORD is missing a value: run make env"
    assert composing.missing_variable(out) == ("MONGO_ROOT_PASSWORD", "run make env")
    assert composing.missing_variable("some other error") is None


# --- connections name services of the file --------------------------------------------------------


def test_connections_of_the_real_file_name_its_services():
    assert unknown_hosts(COMPOSE) == []


@pytest.mark.parametrize(
    ("service", "variable", "value", "host"),
    [
        ("airflow-scheduler", "BTC_KAFKA_BOOTSTRAP", "kafka:9092", "kafka"),
        ("api", "BTC_MONGO_URI", "mongodb://u:p@mongo:27017/?authSource=admin", "mongo"),
        ("airflow-scheduler", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg2://a:b@db:5432/airflow", "db"),
        (
            "airflow-scheduler",
            "AIRFLOW_CONN_BTC_MONGO",
            '{"conn_type": "mongo", "host": "mongodb-x", "port": 27017}',
            "mongodb-x",
        ),
        ("airflow-scheduler", "AIRFLOW_CONN_BTC_KAFKA", '{"extra": {"bootstrap.servers": "red:9092"}}', "red"),
        ("redpanda-console", "KAFKA_BROKERS", "redpand:9092", "redpand"),
    ],
)
def test_a_connection_to_a_service_that_does_not_exist_is_found(service: str, variable: str, value: str, host: str):
    broken = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    broken["services"][service]["environment"][variable] = value
    found = unknown_hosts(broken)
    assert any(f"{service}: {variable}" in f and repr(host) in f for f in found), found


# --- health schedule, figures ---------------------------------------------------------------------


def test_health_schedule_follows_the_containers_interval():
    inspect = {
        "Name": "btc-pipeline-api-1",
        "Config": {
            "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 30_000_000_000, "Timeout": 10_000_000_000},
            "Labels": {"com.docker.compose.service": "api"},
        },
    }
    item = schedule(inspect, now=100.0)
    assert item is not None
    assert (item.service, item.interval_s, item.timeout_s, item.due) == ("api", 30.0, 10.0, 130.0)
    assert schedule({"Config": {"Healthcheck": {"Test": ["NONE"]}}}, 0) is None
    assert schedule({"Config": {}}, 0) is None


@pytest.mark.parametrize(
    ("text", "value"), [("1.5GB", 1.5e9), ("512MiB", 512 * 1024**2), ("900kB", 9e5), ("12B", 12), ("x", 0)]
)
def test_memory_figures(text: str, value: float):
    assert parse_size(text) == pytest.approx(value)


def test_human_figures():
    assert human_bytes(1_190_000_000) == "1.19 GB"
    assert human_bytes(795_000_000) == "795 MB"
    assert duration(75.2) == "1 min 15 s"
    assert duration(12.34) == "12.3 s"


def test_leftover_exec_monitors_are_found_by_storage_and_stopped(tmp_path: Path):
    """A process named conmon whose command line names the check's storage is stopped; one naming
    other storage (someone else's podman) is left alone."""
    import subprocess
    import sys

    from deploycheck import host

    ours_dir, theirs_dir = tmp_path / "state" / "podman", tmp_path / "other" / "podman"

    def conmon(storage: Path) -> subprocess.Popen[bytes]:  # argv[0] "conmon", a sleeping Python
        argv = ["conmon", "-c", "import time; time.sleep(600)", f"--persist-dir={storage}/root/x"]
        return subprocess.Popen(argv, executable=sys.executable)

    ours, theirs = conmon(ours_dir), conmon(theirs_dir)
    try:
        found = host.conmons_under(ours_dir)
        assert [proc.pid for proc in found] == [ours.pid]
        host.stop_processes(found)
        assert not found[0].is_running() and theirs.poll() is None  # (stop_processes reaped ours)
    finally:
        for process in (ours, theirs):
            process.kill()
            process.wait()


def test_stop_by_pid_stops_a_process_that_ignores_sigterm_and_only_it():
    """SIGTERM first; a process that ignores it is killed after the timeout; another process of the
    same parent is left running."""
    import subprocess
    import sys

    from deploycheck import host

    ignore_term = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN)"
    stubborn = f"{ignore_term}; print('ready', flush=True); time.sleep(600)"
    target = subprocess.Popen([sys.executable, "-c", stubborn], stdout=subprocess.PIPE, start_new_session=True)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        assert target.stdout is not None and target.stdout.readline() == b"ready\n"  # SIGTERM ignored from here
        host.stop_by_pid(target, timeout_s=0.5)
        assert target.poll() is not None and bystander.poll() is None
    finally:
        for process in (target, bystander):
            process.kill()
            process.wait()
