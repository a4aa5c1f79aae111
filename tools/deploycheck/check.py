"""The phases of ``make compose-check``, in order. See the package docstring for what each shows."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from btc_pipeline.cli.airflow_client import AirflowClient
from btc_pipeline.config import ApiSettings, read_env_file
from deploycheck import compose as composing
from deploycheck import host
from deploycheck.datapath import PIPELINE_PROBE, Latest, dashboard_shows_price, latest_price, wait_for
from deploycheck.images import LABEL, Builder, Resolved, dockerfile_bases, image_sizes, normalize, stand_in_for
from deploycheck.report import DeployCheckError, Report, duration, human_bytes
from deploycheck.wiring import unknown_hosts
from devstack.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
HOME = ROOT / "state" / "deploycheck"
#: Host ports of the compose file, each given a free one so that the check never meets another stack.
PORT_VARIABLES = ("AIRFLOW_PORT", "DASHBOARD_PORT", "API_PORT", "KAFKA_PORT", "MONGO_PORT", "REDPANDA_CONSOLE_PORT")
#: The DAGs made unpaused through the REST API (as Airflow's own compose test does), then watched.
LIVE_DAGS = ("btc_ingest", "btc_drain")
SIMEX_IMAGE = "localhost/deploycheck/simexchange:latest"
#: The images are built (podman build) and pulled (or stood in) before: compose only starts.
UP = ("up", "--detach", "--wait", "--wait-timeout", "900", "--no-build", "--pull", "never")


@dataclass
class Run:
    """State shared by the phases of one check."""

    report: Report
    podman: host.Podman = field(init=False)
    env_file: Path = HOME / "compose.env"
    ports: dict[str, int] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    compose: composing.Compose | None = None
    api_service: host.ApiService | None = None
    health: subprocess.Popen[bytes] | None = None
    resolved: dict[str, Resolved] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)
    up_started: float = 0.0
    binary: Path | None = None

    def __post_init__(self) -> None:
        self.podman = host.Podman(HOME)

    @property
    def logs(self) -> Path:
        return HOME / "logs"

    def secrets(self) -> dict[str, str]:
        return read_env_file(self.env_file)

    def exec_in(self, service: str, *argv: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        assert self.compose is not None
        return self.compose.run("exec", "-T", service, *argv, check=False, timeout_s=timeout_s)


# --- phases ---------------------------------------------------------------------------------------


def prerequisites(run: Run) -> None:
    installed = host.ensure_packages()
    run.report.say(f"Debian packages: {'installed ' + ' '.join(installed) if installed else 'all present'}")
    for tool, hint in (("go", "Go 1.24+"), ("make", "make")):
        if not shutil.which(tool):
            raise DeployCheckError(f"{tool} not found: install {hint}")
    for path in (ROOT / ".venv" / "bin" / "btc-pipeline", ROOT / "state" / "kafka" / "libs"):
        if not path.exists():
            raise DeployCheckError(f"{path} missing: run `make setup`")
    run.binary = compose_binary(run)


def compose_binary(run: Run) -> Path:
    cached = (HOME / "bin" / f"docker-compose-{host.COMPOSE_VERSION}").exists()
    started = time.monotonic()
    binary = host.build_compose(HOME / "bin", log=run.logs / "compose-build.log")
    took = time.monotonic() - started
    how = "cached" if cached else f"built from the Go module proxy in {duration(took)}"
    run.report.note(f"Docker Compose {host.COMPOSE_VERSION}: {how} ({binary.relative_to(ROOT)})")
    return binary


def environment(run: Run) -> None:
    """``make env`` writes the check's own env file; the example file is refused, naming a variable."""
    run.env_file.unlink(missing_ok=True)
    made = subprocess.run(
        ["make", "-s", "env", f"ENV_FILE={run.env_file}"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if made.returncode != 0:
        raise DeployCheckError(f"make env failed: {made.stdout}{made.stderr}")
    run.report.say(f"make env ENV_FILE={run.env_file.relative_to(ROOT)}: {made.stdout.strip()[:200]}")
    run.ports = {name: free_port() for name in PORT_VARIABLES}
    env = {**os.environ, **{k: str(v) for k, v in run.ports.items()}, "DOCKER_CONFIG": str(HOME / "docker-config")}
    env["BIND_ADDRESS"] = "127.0.0.1"
    env.pop("COMPOSE_PROJECT_NAME", None)  # the file's own `name:`
    assert run.binary is not None
    run.compose = composing.Compose(
        run.binary, ROOT, [ROOT / "docker-compose.yml"], run.env_file, env, log=run.logs / "compose.log"
    )
    refused = run.compose.run("config", "--quiet", env_file=ROOT / ".env.example", check=False)
    found = composing.missing_variable(refused.stderr)
    if refused.returncode == 0 or found is None:
        raise DeployCheckError(
            "docker compose accepted .env.example, whose secrets are placeholders: "
            f"exit {refused.returncode} {refused.stderr.strip()[:300]}"
        )
    run.report.note(f"refused with .env.example: `{found[0]}`: {found[1]} (compose exit {refused.returncode})")
    run.config = run.compose.config()
    run.report.say(f"config with the fresh env file: {len(run.config['services'])} services")
    nowhere = unknown_hosts(run.config)
    if nowhere and os.environ.get("DEPLOYCHECK_SKIP_WIRING"):
        run.report.note("DEPLOYCHECK_SKIP_WIRING set: going on despite " + "; ".join(nowhere))
    elif nowhere:
        raise DeployCheckError("connections to no service: " + "; ".join(nowhere))
    run.report.say("every connection setting names a service of the file")


def images(run: Run) -> None:
    """Pull each image the compose file and the Dockerfiles name; stand-ins for those that cannot be."""
    builder = Builder(run.podman, ROOT, HOME / "build", run.logs / "build.log")
    (HOME / "build").mkdir(parents=True, exist_ok=True)
    services = run.config["services"]
    project = {}  # image -> (dockerfile, context)
    external: list[str] = []
    for service in services.values():
        build = service.get("build")
        if build:
            context = Path(build.get("context", "."))
            dockerfile = build.get("dockerfile", "Dockerfile")
            project[service["image"]] = (
                dockerfile,
                str(context.relative_to(ROOT) if context.is_absolute() else context),
            )
            external += [b for b in dockerfile_bases(ROOT / context / dockerfile) if b not in external]
    external += sorted({s["image"] for s in services.values() if not s.get("build") and s["image"] not in external})
    for image in external:
        pulled, why = run.podman.try_pull(normalize(image))
        run.resolved[image] = Resolved(image, pulled, why)
        run.report.say(f"{image}: {'pulled' if pulled else 'cannot be pulled (...' + why[-100:] + ')'}")
    needed = [r for r in run.resolved.values() if not r.pulled]
    if needed:
        base = builder.base()
        extra = standin_extras(run, builder)
        for r in needed:
            r.standin = stand_in_for(r.image)
            r.run_as, r.built_s = builder.standin(r.standin, r.image, base, extra.get(r.standin.name, {}))
            if r.standin.real_name:
                r.run_as = r.image
            how = "cached" if r.built_s is None else f"built in {duration(r.built_s)}"
            run.report.note(f"STAND-IN {r.image} <- {r.run_as}: {r.standin.summary} [{how}]")
    for image, (dockerfile, directory) in project.items():
        seconds = builder.project_image(image, dockerfile, directory)
        run.report.note(f"built {image} from {Path(directory) / dockerfile} (unmodified) in {duration(seconds)}")
    seconds = builder.project_image(SIMEX_IMAGE, "tools/deploycheck/simexchange.Containerfile", ".")
    run.report.say(f"built {SIMEX_IMAGE} (the simulated exchange as a service) in {duration(seconds)}")
    run.images = [*project, *(r.run_as or r.image for r in run.resolved.values())]
    sizes = image_sizes(run.podman, [normalize(i) if "/" in i and "." in i.split("/")[0] else i for i in run.images])
    run.report.note("image sizes: " + ", ".join(f"{name} {human_bytes(n)}" for name, n in sizes.items()))
    for name, seconds in builder.timings.items():
        run.report.say(f"build time {name}: {duration(seconds)}")


def standin_extras(run: Run, builder: Builder) -> dict[str, dict[str, Path]]:
    """Files the stand-ins need from the project: Kafka's jars, FerretDB, Airflow's constraints."""
    extras: dict[str, dict[str, Path]] = {"kafka": {"libs": ROOT / "state" / "kafka" / "libs"}}
    names = {stand_in_for(r.image).name for r in run.resolved.values() if not r.pulled}
    if "ferretdb" in names:
        version = ferretdb_version()
        started = time.monotonic()
        cached = (HOME / "bin" / f"ferretdb-{version}").exists()
        binary = host.build_ferretdb(HOME / "bin", HOME / "build", version, log=run.logs / "ferretdb-build.log")
        if not cached:
            builder.timings[f"FerretDB {version} (go build)"] = time.monotonic() - started
        extras["ferretdb"] = {"ferretdb": binary}
    if "airflow" in names:
        constraints = HOME / "build" / "airflow-constraints.txt"
        uv = ROOT / "state" / "uv" / "bin" / "uv"
        argv = [str(uv), "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--no-header"]
        done = subprocess.run(
            [*argv, "--no-annotate", "-o", str(constraints)], cwd=ROOT, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise DeployCheckError(f"uv export of uv.lock failed: {done.stderr[-800:]}")
        extras["airflow"] = {"constraints.txt": constraints}
    return extras


def ferretdb_version() -> str:
    """The FerretDB version tools/ferretdb/go.mod requires (the local stack's)."""
    found = re.search(r"github\.com/FerretDB/FerretDB\s+(v\S+)", (ROOT / "tools" / "ferretdb" / "go.mod").read_text())
    if not found:
        raise DeployCheckError("tools/ferretdb/go.mod names no github.com/FerretDB/FerretDB version")
    return found.group(1)


def engine(run: Run) -> None:
    """The podman API service the compose binary talks to, and the loop that runs health checks."""
    run.api_service = host.ApiService(run.podman, run.logs / "podman-service.log")
    run.api_service.start()
    remember_background(run)
    assert run.compose is not None
    run.compose.env = {**run.compose.env, "DOCKER_HOST": run.api_service.docker_host}
    run.report.say(f"podman system service on {run.api_service.docker_host} (pid {run.api_service.process.pid})")  # type: ignore[union-attr]
    swaps = {r.image: r.run_as for r in run.resolved.values() if r.standin and not r.standin.real_name}
    override = composing.override(run.config, swaps, SIMEX_IMAGE)
    path = HOME / "compose.override.yml"
    header = "# Written by tools/deploycheck for make compose-check: stand-in images and the simulated exchange.\n"
    path.write_text(header + yaml.safe_dump(override, sort_keys=False))
    run.compose.files = [ROOT / "docker-compose.yml", path]
    run.report.say(
        f"override {path.relative_to(ROOT)}: images swapped for {', '.join(sorted(swaps)) or 'none'}; exchange URLs "
        f"of {', '.join(composing.exchange_url_services(run.config))} -> service {composing.SIMEX_SERVICE}"
    )
    run.compose.run("down", "--volumes", "--remove-orphans", timeout_s=300)  # a previous run's leftovers


def placeholder_refused(run: Run) -> None:
    """``up`` with a weak secret in the env file: the one-shot check-secrets service exits 1 naming it,
    and nothing else starts. (``compose run --rm`` is not used: on podman 4.3 it exits 0 whatever the
    container's exit code.)"""
    assert run.compose is not None
    if "check-secrets" not in run.config["services"]:
        raise DeployCheckError("docker-compose.yml has no check-secrets service")
    weak = HOME / "weak.env"
    weak.write_text(
        re.sub(r"(?m)^AIRFLOW_ADMIN_PASSWORD=.*$", "AIRFLOW_ADMIN_PASSWORD=admin", run.env_file.read_text())
    )
    weak.chmod(0o600)
    try:
        done = run.compose.run(*UP, env_file=weak, check=False, timeout_s=600)
        logs = run.compose.run("logs", "--no-color", "check-secrets", env_file=weak, check=False).stdout
        states = composing.parse_ps(run.compose.run("ps", "-a", "--format", "json", env_file=weak).stdout)
    finally:
        run.compose.run("down", "--volumes", "--remove-orphans", env_file=weak, check=False, timeout_s=300)
        weak.unlink()
    others = {"check-secrets", composing.SIMEX_SERVICE}
    started = sorted(s.service for s in states if s.state not in ("created", "exited") and s.service not in others)
    if done.returncode == 0 or "AIRFLOW_ADMIN_PASSWORD" not in logs or started:
        raise DeployCheckError(
            f"AIRFLOW_ADMIN_PASSWORD=admin was not refused: up exit {done.returncode}, started {started}, "
            f"check-secrets said: {logs[-500:]}"
        )
    line = next((x for x in logs.splitlines() if "AIRFLOW_ADMIN_PASSWORD" in x), "").split("|", 1)[-1].strip()
    run.report.note(
        f"refused with AIRFLOW_ADMIN_PASSWORD=admin: `up` exit {done.returncode}, nothing else started; "
        f"check-secrets: {line[:150]}"
    )


def up(run: Run) -> None:
    assert run.compose is not None
    health_log = run.logs / "health.jsonl"
    health_log.unlink(missing_ok=True)
    run.health = subprocess.Popen(
        [sys.executable, "-m", "deploycheck.healthloop", str(HOME), project_name(run), str(health_log)],
        env={**run.podman.env, "PYTHONPATH": str(ROOT / "tools")},
        stdout=(run.logs / "healthloop.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    remember_background(run)
    run.report.say(f"health-check loop started (pid {run.health.pid}): podman has no systemd timers here")
    run.up_started = time.monotonic()
    started_wall = time.time()
    done = run.compose.run(
        "up",
        "--detach",
        "--wait",
        "--wait-timeout",
        "900",
        "--no-build",
        "--pull",
        "never",
        check=False,
        timeout_s=1000,
    )
    took = time.monotonic() - run.up_started
    if done.returncode != 0:
        raise DeployCheckError(
            f"compose up --wait failed after {duration(took)}:\n{done.stderr[-1500:]}\n{diagnose(run)}"
        )
    run.report.note(f"compose up --wait: every service healthy or done in {duration(took)}")
    firsts: dict[str, float] = {}
    for line in health_log.read_text().splitlines():
        record = json.loads(line)
        if record["healthy"] and record["service"] not in firsts:
            firsts[record["service"]] = record["t"] - started_wall
    run.report.note(
        "time to first healthy check after `up`: "
        + ", ".join(f"{s} {v:.0f} s" for s, v in sorted(firsts.items(), key=lambda x: x[1]))
    )


def project_name(run: Run) -> str:
    return str(run.config.get("name") or "btc-pipeline")


def diagnose(run: Run) -> str:
    """`compose ps -a` and the last log lines of every service that is not fine."""
    assert run.compose is not None
    ps = run.compose.run("ps", "-a", "--format", "json", check=False)
    states = composing.parse_ps(ps.stdout)
    verdict = composing.verdict(run.config, states)
    parts = ["services:", *(f"  {line}" for line in verdict.lines), "problems:", *(f"  {p}" for p in verdict.problems)]
    bad = {p.split(":", 1)[0] for p in verdict.problems}
    for service in sorted(bad & set(run.config["services"])):
        logs = run.compose.run("logs", "--no-color", "--tail", "25", service, check=False)
        parts += [f"--- logs of {service} (last 25 lines)", (logs.stdout + logs.stderr).strip()]
    return "\n".join(parts)


def services(run: Run) -> None:
    assert run.compose is not None
    states = composing.parse_ps(run.compose.run("ps", "-a", "--format", "json").stdout)
    verdict = composing.verdict(run.config, states)
    for line in verdict.lines:
        run.report.say(line)
    if not verdict.ok:
        raise DeployCheckError("services not as expected: " + "; ".join(verdict.problems) + "\n" + diagnose(run))


def airflow(run: Run) -> None:
    secrets = run.secrets()
    client = AirflowClient(
        ApiSettings(
            url=f"http://127.0.0.1:{run.ports['AIRFLOW_PORT']}",
            user=secrets.get("AIRFLOW_ADMIN_USER") or "admin",
            password=secrets["AIRFLOW_ADMIN_PASSWORD"],
        )
    )
    health = client.health()
    states = {k: v.get("status") for k, v in health.items() if isinstance(v, dict)}
    run.report.say(f"/api/v2/monitor/health: {states}")
    if any(v != "healthy" for v in states.values()):
        raise DeployCheckError(f"Airflow is not healthy: {states}")
    expected = sorted(p.stem for p in (ROOT / "dags").glob("*.py") if not p.name.startswith("_"))

    def parsed() -> list[str] | None:
        errors = client.call("GET", "/importErrors")
        if errors["total_entries"]:
            raise DeployCheckError("DAG import errors: " + "; ".join(import_error(e) for e in errors["import_errors"]))
        ids = sorted(str(d["dag_id"]) for d in client.call("GET", "/dags", query={"limit": 100})["dags"])
        return ids if set(expected) <= set(ids) else None

    dag_ids = wait_for(parsed, 180, f"the DAGs {expected} parsed")
    errors = client.call("GET", "/importErrors")
    run.report.note(f"DAGs loaded: {len(dag_ids)} ({', '.join(dag_ids)}); import errors: {errors['total_entries']}")
    if errors["total_entries"]:
        raise DeployCheckError(f"import errors: {json.dumps(errors)[:1500]}")
    for dag_id in LIVE_DAGS:
        client.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})
    run.report.say(f"unpaused through the REST API: {', '.join(LIVE_DAGS)}")

    def scheduled_success() -> dict[str, Any] | None:
        runs = client.call("GET", "/dags/btc_ingest/dagRuns", query={"limit": 50, "order_by": "-run_after"})["dag_runs"]
        return next((r for r in runs if r["run_type"] == "scheduled" and r["state"] == "success"), None)

    try:
        ingest = wait_for(scheduled_success, 300, "a scheduled btc_ingest run that succeeded", interval_s=5)
    except DeployCheckError as exc:
        raise DeployCheckError(f"{exc}\n{ingest_runs(client)}") from None
    run.report.note(
        f"btc_ingest ran on schedule: {ingest['dag_run_id']} ({ingest['data_interval_start']} .. "
        f"{ingest['data_interval_end']}) success, {since_up(run)} after `up`"
    )


def ingest_runs(client: AirflowClient) -> str:
    """The latest btc_ingest runs and the states of the last one's tasks, to say why none succeeded."""
    runs = client.call("GET", "/dags/btc_ingest/dagRuns", query={"limit": 5, "order_by": "-run_after"})["dag_runs"]
    lines = [f"  {r['dag_run_id']} ({r['run_type']}): {r['state']}" for r in runs]
    if runs:
        path = f"/dags/btc_ingest/dagRuns/{urllib.parse.quote(runs[0]['dag_run_id'], safe='')}/taskInstances"
        tis = client.call("GET", path)["task_instances"]
        lines += [f"    {t['task_id']}: {t['state']} (try {t.get('try_number')})" for t in tis]
    return "latest btc_ingest runs:\n" + ("\n".join(lines) or "  none")


def import_error(entry: Mapping[str, Any]) -> str:
    """``dags/x.py: ModuleNotFoundError: No module named 'y'`` from one of ``/importErrors``."""
    lines = [line.strip() for line in str(entry.get("stack_trace", "")).splitlines() if line.strip()]
    return f"{Path(str(entry.get('filename', '?'))).name}: {lines[-1] if lines else '?'}"


def since_up(run: Run) -> str:
    return duration(time.monotonic() - run.up_started)


def probe(run: Run, since: datetime | None = None) -> dict[str, Any]:
    """The pipeline probe in the scheduler's container (its own settings and clients)."""
    argv = ["python", "-c", PIPELINE_PROBE, *([since.isoformat()] if since else [])]
    done = run.exec_in("airflow-scheduler", *argv)
    if done.returncode != 0:
        raise DeployCheckError(f"the probe in airflow-scheduler failed: {(done.stdout + done.stderr)[-800:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def data_path(run: Run) -> None:
    topics = {"btc-metrics": 3, "btc-metrics-dlq": 1}
    seen = wait_for(
        lambda: (p := probe(run))["candles"] > 0 and p["committed"] > 0 and p,
        300,
        "candles in FerretDB through Kafka and btc_drain",
        interval_s=10,
    )
    run.report.note(
        f"Kafka: partitions {seen['partitions']}, {seen['produced']} messages produced to btc-metrics, "
        f"{seen['committed']} committed by the drain's group; MongoDB (FerretDB): {seen['candles']} candles, "
        f"{seen['ticks']} ticks ({since_up(run)} after `up`; a btc_drain run is recorded when it ends, after "
        "BTC_DRAIN_IDLE_S without a message or BTC_DRAIN_MAX_SECONDS)"
    )
    if seen["partitions"] != topics:
        raise DeployCheckError(f"topic-init made {seen['partitions']}, expected {topics}")


def read_api(run: Run) -> None:
    url = f"http://127.0.0.1:{run.ports['API_PORT']}"

    def fresh() -> Latest | None:
        latest = latest_price(url)
        return latest if latest is not None and latest.age_s < 60 else None

    latest = wait_for(fresh, 120, "a price under a minute old at /v1/prices/latest")
    run.report.note(
        f"/v1/prices/latest on the api container: consensus {latest.shown}, {latest.age_s:.1f} s old, "
        f"from {', '.join(sorted(latest.exchanges))}"
    )


def dashboard(run: Run) -> None:
    shot = HOME / "dashboard.png"
    latest, seconds = dashboard_shows_price(
        f"http://127.0.0.1:{run.ports['DASHBOARD_PORT']}", f"http://127.0.0.1:{run.ports['API_PORT']}", shot
    )
    run.report.note(
        f"dashboard in headless Chromium shows the API's consensus {latest.shown} ({seconds:.1f} s after "
        f"navigation); screenshot {shot.relative_to(ROOT)}"
    )


def backfill(run: Run) -> None:
    started = time.monotonic()
    done = run.exec_in("airflow-apiserver", "btc-pipeline", "backfill", "--from", "2h", timeout_s=900)
    took = time.monotonic() - started
    tail = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()][-4:]
    if done.returncode != 0:
        raise DeployCheckError(f"btc-pipeline backfill --from 2h exited {done.returncode}: " + " | ".join(tail))
    run.report.say("backfill: " + " | ".join(tail))
    window = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    gaps = run.exec_in("airflow-apiserver", "btc-pipeline", "gaps", "--from", window.isoformat(), "--to", "3m")
    counted = probe(run, window)
    expected = 120 - 3
    if gaps.returncode != 0 or counted["minutes_in_window"] < expected:
        raise DeployCheckError(
            f"after the backfill: gaps exit {gaps.returncode} ({gaps.stdout.strip()[-300:]}), "
            f"{counted['minutes_in_window']} minutes with a candle since {window:%H:%M}Z (expected >= {expected})"
        )
    run.report.note(
        f"`docker compose exec airflow-apiserver btc-pipeline backfill --from 2h`: exit 0 in {duration(took)}; "
        f"{counted['minutes_in_window']} minutes with candles since {window:%H:%M}Z, `gaps` finds no hole"
    )


def housekeeping(run: Run) -> None:
    """The housekeeping service is healthy (its first pass succeeded); a pass run by hand in it says
    what it deleted, with Airflow's `airflow db clean` on the Postgres metadata database."""
    done = run.exec_in("airflow-housekeeping", "btc-pipeline", "housekeeping", timeout_s=600)
    said = " | ".join(line for line in (done.stdout + done.stderr).splitlines()[-3:] if line.strip())
    if done.returncode != 0:
        raise DeployCheckError(f"btc-pipeline housekeeping exited {done.returncode}: {said[-800:]}")
    run.report.note(f"`btc-pipeline housekeeping` in airflow-housekeeping: {said[-400:]}")


def memory(run: Run) -> None:
    """Memory of each running container, and which image (stand-in or on a stand-in base) it runs."""
    containers = {c["Names"][0]: c for c in run.podman.json("ps", "--format", "json") or []}
    rows = []
    for row in run.podman.json("stats", "--no-stream", "--format", "json") or []:
        if str(row.get("name")) in containers:
            rows.append((str(row["name"]), parse_size(str(row.get("mem_usage", "0B")).split("/")[0])))
    standins = {normalize(r.run_as) for r in run.resolved.values() if r.standin}
    for name, used in sorted(rows, key=lambda r: -r[1]):
        image = str(containers[name].get("Image", ""))
        label = run.podman.image_labels(image).get(LABEL, "")
        if label and normalize(image) in standins:
            label = f"  [STAND-IN: {label}]"
        elif label:
            label = "  [project image on the stand-in " + label.rsplit("(stands for ", 1)[-1].rstrip(")") + "]"
        run.report.say(f"{name:40} {human_bytes(used):>9}  {image}{label}")
    total = sum(used for _, used in rows)
    run.report.note(f"memory of the {len(rows)} running containers: {human_bytes(total)} in all")


def parse_size(text: str) -> float:
    """``1.2GB`` / ``512.3MiB`` / ``900kB`` -> bytes."""
    found = re.match(r"\s*([\d.]+)\s*([kKMGT]?i?B)?", text)
    if not found:
        return 0.0
    units = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "KiB": 1024, "kiB": 1024}
    units.update({"MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4})
    return float(found.group(1)) * units.get(found.group(2) or "B", 1)


def down(run: Run) -> None:
    assert run.compose is not None
    started = time.monotonic()
    run.compose.run("down", "--volumes", "--remove-orphans", timeout_s=300)
    label = f"label=com.docker.compose.project={project_name(run)}"
    left = {
        "containers": run.podman.json("ps", "-a", "--filter", label, "--format", "json") or [],
        "volumes": run.podman.json("volume", "ls", "--filter", label, "--format", "json") or [],
        "networks": run.podman.json("network", "ls", "--filter", label, "--format", "json") or [],
    }
    if any(left.values()):
        raise DeployCheckError(f"compose down -v left { ({k: len(v) for k, v in left.items()}) }")
    monitors = host.conmons_under(HOME / "podman")  # the containers are gone: their exec monitors too
    host.stop_processes(monitors)
    run.report.note(
        f"compose down -v in {duration(time.monotonic() - started)}: no container, volume or network left"
        f" ({len(monitors)} exec-session conmon process(es) podman left behind stopped)"
    )


def stop_background(run: Run) -> None:
    if run.health is not None and run.health.poll() is None:
        host.stop_by_pid(run.health, timeout_s=5)
    if run.api_service is not None:
        run.api_service.stop()
    PIDS.unlink(missing_ok=True)


#: The pids of the API service and the health loop while a check runs (a killed check leaves them).
PIDS = HOME / "background.pids"


def remember_background(run: Run) -> None:
    processes = [run.health, run.api_service.process if run.api_service else None]
    pids = [p.pid for p in processes if p is not None]
    PIDS.write_text("".join(f"{pid}\n" for pid in pids))


def stop_leftovers(report: Report) -> None:
    """Stop what a killed earlier check left running: only the pids it recorded, and only while their
    command line still names this check's directory (a reused pid is someone else's)."""
    if not PIDS.exists():
        return
    for line in PIDS.read_text().split():
        cmdline = Path(f"/proc/{line}/cmdline")
        try:
            ours = str(HOME) in cmdline.read_bytes().decode(errors="replace")
        except OSError:
            continue
        if ours:
            os.kill(int(line), signal.SIGTERM)
            report.say(f"stopped pid {line}, left running by an earlier check")
    PIDS.unlink()


PHASES = (
    ("host prerequisites", prerequisites),
    ("env file and the example's refusal", environment),
    ("images", images),
    ("podman API, override", engine),
    ("placeholder secret refused", placeholder_refused),
    ("compose up --wait", up),
    ("services", services),
    ("Airflow: DAGs, import errors, scheduled btc_ingest", airflow),
    ("data path: exchange -> Kafka -> drain -> FerretDB", data_path),
    ("read API", read_api),
    ("dashboard in Chromium", dashboard),
    ("backfill --from 2h via compose exec", backfill),
    ("housekeeping of Airflow's logs and runs", housekeeping),
    ("memory", memory),
    ("compose down -v", down),
)


def main(argv: list[str]) -> int:
    run = Run(Report())
    run.logs.mkdir(parents=True, exist_ok=True)
    stop_leftovers(run.report)
    for log in run.logs.glob("*.log"):
        log.unlink()
    print(f"compose-check: podman storage, images, logs under {HOME.relative_to(ROOT)}/ (logs/ for the details)")
    verdict = "FAILED"
    try:
        for name, step in PHASES:
            with run.report.phase(name):
                step(run)
        verdict = "passed"
        return 0
    except (DeployCheckError, host.HostError, composing.ComposeError) as exc:
        print(f"\ncompose-check: FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        if run.compose is not None and run.api_service is not None and verdict == "FAILED":
            run.compose.run("down", "--volumes", "--remove-orphans", check=False, timeout_s=300)
            host.stop_processes(host.conmons_under(HOME / "podman"))  # the containers are gone: their exec monitors too
        stop_background(run)
        print(run.report.render(verdict), flush=True)
