"""Checks of the Docker deployment that need no Docker engine and no service.

``docker-compose.yml``, the two Dockerfiles and ``.env.example`` are read as YAML and text, and
the compose file is also loaded by the real compose-spec loader (``tools/composecheck``, built
with ``make tools``), which validates it against the schema and resolves its interpolation: with
``.env.example`` (refused: its secrets are empty) and with a ``.env`` that ``make env`` writes.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from btc_pipeline.config import read_env_file

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
AIRFLOW_DOCKERFILE = ROOT / "Dockerfile"
DASHBOARD_DOCKERFILE = ROOT / "dashboard" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
UV_LOCK = ROOT / "uv.lock"
COMPOSECHECK = ROOT / "state" / "bin" / "composecheck"

ONE_SHOT = frozenset({"check-secrets", "airflow-init", "topic-init"})
BACKENDS = ("postgres", "redpanda", "mongodb")
AIRFLOW_LONG_RUNNING = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-housekeeping",
)
AIRFLOW_SERVICES = ("airflow-init", *AIRFLOW_LONG_RUNNING)
EXPECTED_SERVICES = frozenset(
    {"check-secrets", *BACKENDS, "redpanda-console", "topic-init", *AIRFLOW_SERVICES, "dashboard", "api"},
)
#: Services whose ports are for people (published on BIND_ADDRESS); the others stay on 127.0.0.1.
USER_FACING = ("airflow-apiserver", "dashboard", "api")
#: Services that only read MongoDB, as the read-only user.
MONGO_READERS = ("dashboard", "api")
MONGO_INIT = ROOT / "mongo-init" / "create-readonly-user.js"
JOB_TYPES = {
    "airflow-scheduler": "SchedulerJob",
    "airflow-dag-processor": "DagProcessorJob",
    "airflow-triggerer": "TriggererJob",
}
TOPICS = ("btc-metrics", "btc-metrics-dlq")
#: Environment every Airflow component must have, and with the same value in all of them.
SHARED_AIRFLOW_ENV = (
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
    "AIRFLOW__CORE__PARALLELISM",
    "AIRFLOW_CONN_BTC_KAFKA",
    "AIRFLOW_CONN_BTC_MONGO",
    "BTC_KAFKA_BOOTSTRAP",
    "BTC_MONGO_URI",
)

# --- helpers (pure; unit-tested below) --------------------------------------------------------

#: A variable compose would look up: ``${NAME...}`` or ``$NAME`` (``$$`` escapes a dollar).
_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
_NAME_AFTER_DOLLAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def variable_names(text: str) -> set[str]:
    """Names of the variables that compose would look up in ``text`` (nested defaults included)."""
    return set(_NAME_AFTER_DOLLAR.findall(text.replace("$$", "")))


def variable_defaults(text: str) -> Iterator[tuple[str, str]]:
    """``(name, default)`` of every ``${NAME:-default}`` / ``${NAME-default}`` in ``text``."""
    for match in _INTERPOLATION.finditer(text):
        if match["braced"] and match["op"] in (":-", "-"):
            yield match["braced"], match["arg"]


def image_is_pinned(reference: str) -> bool:
    """Whether an image reference names one release: a digest, or a tag with at least
    ``major.minor`` (``mongo:7.0.16``, ``redpanda:v24.2.18``); not ``latest``, not ``mongo:7``."""
    if "$" in reference:
        return False
    if re.search(r"@sha256:[0-9a-f]{64}$", reference):
        return True
    last_component = reference.rsplit("/", 1)[-1]  # a registry's :port is not a tag
    _, sep, tag = last_component.partition(":")
    return bool(sep) and tag != "latest" and re.search(r"\d+\.\d+", tag) is not None


def published_host_ports(service: Mapping[str, Any]) -> list[int]:
    """Host ports a service of the resolved project publishes."""
    return [int(entry["published"]) for entry in service.get("ports", []) if entry.get("published")]


def string_values(node: Any) -> Iterator[str]:
    """Every string value in a parsed YAML tree (keys excluded: compose does not interpolate them)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from string_values(value)
    elif isinstance(node, list):
        for value in node:
            yield from string_values(value)


def as_text(command: Any) -> str:
    """A service's command or healthcheck test, list or string, as one string."""
    if command is None:
        return ""
    return command if isinstance(command, str) else " ".join(str(part) for part in command)


def dockerfile_bases(text: str) -> list[str]:
    """The image of every ``FROM`` line (``--platform`` flags and ``AS name`` dropped)."""
    bases = []
    for line in text.splitlines():
        words = line.split()
        if words and words[0].upper() == "FROM":
            images = [word for word in words[1:] if not word.startswith("--")]
            bases.append(images[0])
    return bases


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def generated_env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``.env`` as ``make env`` writes it (``btc-pipeline init-env``'s own function)."""
    from btc_pipeline.deploy_secrets import write_env

    path = tmp_path_factory.mktemp("env") / ".env"
    write_env(path, ENV_EXAMPLE)
    return path


@pytest.fixture(scope="module")
def generated_env(generated_env_file: Path) -> dict[str, str]:
    return read_env_file(generated_env_file)


def env_file_with(directory: Path, env: Mapping[str, str]) -> Path:
    """A ``.env`` in ``directory`` holding ``env``."""
    path = directory / ".env"
    path.write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    return path


def resolve(env_file: Path) -> dict[str, Any]:
    """The project as docker compose resolves it with ``env_file`` (compose-go's own loader and
    interpolation, through ``composecheck -json``)."""
    result = composecheck(env_file, "-json")
    assert result.returncode == 0, result.stderr
    project: dict[str, Any] = json.loads(result.stdout)
    return project


@pytest.fixture(scope="module")
def resolved(generated_env_file: Path) -> dict[str, dict[str, Any]]:
    """The resolved services with a ``make env`` .env: every variable interpolated."""
    return resolve(generated_env_file)["services"]


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the KEY=VALUE list form
        return dict(item.partition("=")[::2] for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


# --- the helpers can fail ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "pinned"),
    [
        ("mongo:7.0.16", True),
        ("docker.redpanda.com/redpandadata/redpanda:v24.2.18", True),
        ("apache/airflow:3.3.2-python3.11", True),
        ("localhost:5000/postgres:16.4", True),
        (f"postgres@sha256:{'a' * 64}", True),
        ("postgres", False),
        ("postgres:latest", False),
        ("mongo:7", False),
        ("localhost:5000/postgres", False),
        ("redpanda:${REDPANDA_TAG:-v24.2.18}", False),
    ],
)
def test_image_is_pinned(reference: str, pinned: bool) -> None:
    assert image_is_pinned(reference) is pinned


def test_variable_names_skip_escapes_and_find_nested_ones() -> None:
    assert variable_names("$${HOSTNAME} ${A:-${B}} $C $$D") == {"A", "B", "C"}


def test_env_example_sets_each_key_once() -> None:
    from dotenv.parser import parse_stream

    with ENV_EXAMPLE.open() as stream:
        keys = [binding.key for binding in parse_stream(stream) if binding.key]
    assert len(keys) == len(set(keys)), {key for key in keys if keys.count(key) > 1}


# --- docker-compose.yml -----------------------------------------------------------------------


def test_the_expected_services_are_defined(services: dict[str, Any]) -> None:
    assert set(services) == EXPECTED_SERVICES


def test_every_image_is_pinned(services: dict[str, Any]) -> None:
    unpinned = {name: s["image"] for name, s in services.items() if "image" in s and not image_is_pinned(s["image"])}
    assert not unpinned, f"images without a pinned release tag: {unpinned}"
    no_image = [name for name, s in services.items() if "image" not in s and "build" not in s]
    assert not no_image, f"services with neither image nor build: {no_image}"


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("dockerfile", [AIRFLOW_DOCKERFILE, DASHBOARD_DOCKERFILE], ids=relative)
def test_dockerfile_bases_are_pinned(dockerfile: Path) -> None:
    bases = dockerfile_bases(dockerfile.read_text())
    assert bases, f"{dockerfile} has no FROM line"
    assert all(image_is_pinned(base) for base in bases), bases


def test_airflow_base_image_is_the_locked_airflow() -> None:
    lock = tomllib.loads(UV_LOCK.read_text())
    locked = {package["name"]: package["version"] for package in lock["package"]}
    python = re.search(r"\d+\.\d+", lock["requires-python"])
    assert python is not None
    expected = f"apache/airflow:{locked['apache-airflow']}-python{python.group()}"
    assert dockerfile_bases(AIRFLOW_DOCKERFILE.read_text()) == [expected]


def test_long_running_services_have_healthchecks_and_restart(services: dict[str, Any]) -> None:
    problems = []
    for name, service in services.items():
        if name in ONE_SHOT:
            continue
        check = service.get("healthcheck") or {}
        if check.get("disable") or not check.get("test") or as_text(check["test"]).upper() == "NONE":
            problems.append(f"{name}: no healthcheck")
        if service.get("restart") != "unless-stopped":
            problems.append(f"{name}: restart is {service.get('restart')!r}, not unless-stopped")
    assert not problems, problems


def test_healthchecks_run_the_same_on_docker_and_podman(services: dict[str, Any]) -> None:
    # podman 4.3's Docker API splits each argument of an exec-form test ["CMD", ...] on spaces (the
    # dashboard's python -c stayed "unhealthy" under make compose-check): a test is either CMD-SHELL
    # or CMD with arguments free of whitespace, which both engines run alike.
    problems = []
    for name, service in services.items():
        test = (service.get("healthcheck") or {}).get("test")
        if isinstance(test, list) and test and test[0] == "CMD":
            problems += [f"{name}: {arg!r}" for arg in test[1:] if any(c.isspace() for c in arg)]
    assert not problems, f"exec-form health-check arguments with whitespace (use CMD-SHELL): {problems}"


@pytest.mark.parametrize("name", sorted(ONE_SHOT))
def test_one_shot_services_are_not_restarted(services: dict[str, Any], name: str) -> None:
    # restart: unless-stopped on a job that exits 0 would run it again and again.
    assert services[name].get("restart", "no") == "no"


def test_every_dependency_has_the_right_condition(services: dict[str, Any]) -> None:
    problems = []
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        if not isinstance(depends_on, Mapping):
            problems.append(f"{name}: depends_on is a list, without conditions")
            continue
        for target, spec in depends_on.items():
            expected = "service_completed_successfully" if target in ONE_SHOT else "service_healthy"
            condition = (spec or {}).get("condition")
            if target not in services:
                problems.append(f"{name} depends on undefined service {target}")
            elif condition != expected:
                problems.append(f"{name} -> {target}: condition {condition!r}, expected {expected}")
    assert not problems, problems


@pytest.mark.parametrize("name", AIRFLOW_LONG_RUNNING)
def test_airflow_components_wait_for_backends_and_init(services: dict[str, Any], name: str) -> None:
    depends_on = services[name]["depends_on"]
    for backend in BACKENDS:
        assert depends_on[backend]["condition"] == "service_healthy", backend
    for job in ONE_SHOT:
        assert depends_on[job]["condition"] == "service_completed_successfully", job


def test_airflow_init_migrates_the_database(services: dict[str, Any]) -> None:
    init = services["airflow-init"]
    assert "airflow db migrate" in as_text(init.get("command"))
    assert init["depends_on"]["postgres"]["condition"] == "service_healthy"


def installed_job_types() -> set[str]:
    """The ``--job-type`` choices of ``airflow jobs check`` in the installed Airflow (not imported)."""
    spec = importlib.util.find_spec("airflow")
    assert spec is not None, "apache-airflow is not installed"
    assert spec.submodule_search_locations, "apache-airflow is not a package"
    cli_config = Path(next(iter(spec.submodule_search_locations))) / "cli" / "cli_config.py"
    arg = re.search(r"ARG_JOB_TYPE_FILTER = Arg\((.*?)\n\)", cli_config.read_text(), re.DOTALL)
    assert arg is not None, f"no ARG_JOB_TYPE_FILTER in {cli_config}"
    choices = re.search(r"choices=(\([^)]*\))", arg.group(1))
    assert choices is not None, f"no choices for --job-type in {cli_config}"
    return set(ast.literal_eval(choices.group(1)))


@pytest.mark.parametrize(("name", "job_type"), sorted(JOB_TYPES.items()))
def test_airflow_job_healthchecks(services: dict[str, Any], name: str, job_type: str) -> None:
    test = as_text(services[name]["healthcheck"]["test"])
    assert "airflow jobs check" in test
    assert re.search(rf"--job-type[ =]{job_type}\b", test), test
    assert job_type in installed_job_types()


def test_housekeeping_runs_daily_and_its_health_reads_the_file_a_failed_pass_removes(services: dict[str, Any]) -> None:
    service = services["airflow-housekeeping"]
    command = service["command"]
    assert command[:4] == ["python", "-m", "btc_pipeline.cli", "housekeeping"]
    assert command[command.index("--every") + 1] == "24"
    health_file = command[command.index("--health-file") + 1]
    assert as_text(service["healthcheck"]["test"]).endswith(f"test -f {health_file}")
    assert "airflow-logs:/opt/airflow/logs" in service["volumes"]  # the scheduler's task logs


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("airflow-apiserver", "http://localhost:8080/api/v2/monitor/health"),
        ("dashboard", "http://localhost:8501/_stcore/health"),
        ("api", "http://localhost:8000/livez"),
    ],
)
def test_http_healthchecks(services: dict[str, Any], name: str, url: str) -> None:
    assert url in as_text(services[name]["healthcheck"]["test"])


def test_host_ports_are_distinct_and_console_is_off_airflows(resolved: dict[str, Any]) -> None:
    owners: dict[int, list[str]] = {}
    for name, service in resolved.items():
        for port in published_host_ports(service):
            owners.setdefault(port, []).append(name)
    assert not {port: names for port, names in owners.items() if len(names) > 1}
    console = set(published_host_ports(resolved["redpanda-console"]))
    airflow = set(published_host_ports(resolved["airflow-apiserver"]))
    assert console, "Redpanda Console publishes no port"
    assert airflow, "the Airflow api-server publishes no port"
    assert not console & airflow, f"Redpanda Console and Airflow both publish {console & airflow}"


def test_airflow_services_share_one_build(services: dict[str, Any]) -> None:
    builds = {json.dumps(services[name].get("build"), sort_keys=True) for name in AIRFLOW_SERVICES}
    images = {services[name].get("image") for name in AIRFLOW_SERVICES}
    assert len(builds) == 1, f"the Airflow services have different builds: {builds}"
    assert len(images) == 1, f"the Airflow services have different images: {images}"
    build = services["airflow-init"]["build"]
    assert (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).is_file()
    others = {name for name, s in services.items() if name not in AIRFLOW_SERVICES and s.get("image") in images}
    assert others == {"api", "check-secrets"}, f"other services than the read API and the check reuse it: {others}"
    for name in others:  # whichever service compose builds first, the image is the same
        assert services[name]["build"] == build, name


def test_dashboard_is_built_from_the_repo_root(services: dict[str, Any]) -> None:
    dashboard = services["dashboard"]
    assert dashboard["build"] == {"context": ".", "dockerfile": "dashboard/Dockerfile"}
    assert dashboard["depends_on"]["mongodb"]["condition"] == "service_healthy"
    dockerfile = DASHBOARD_DOCKERFILE.read_text()
    # started in dashboard/, where Streamlit finds .streamlit/config.toml (no Deploy toolbar)
    assert "WORKDIR /app/dashboard" in dockerfile
    assert "streamlit run app.py" in dockerfile.replace('", "', " ")


#: Run in a fresh interpreter: imports what the dashboard imports of the package and prints the
#: distributions that brought the modules it loaded.
_DASHBOARD_IMPORTS = """
import importlib, importlib.metadata, json, sys
before = set(sys.modules)
for name in sys.argv[1:]:
    importlib.import_module(name)
dists = importlib.metadata.packages_distributions()
loaded = {m.split(".")[0] for m in set(sys.modules) - before}
print(json.dumps(sorted({d for top in loaded for d in dists.get(top, [])})))
"""


def test_the_dashboard_image_installs_what_its_package_imports_need() -> None:
    # The image installs a hand-picked list (not Airflow, not the Kafka client) with --no-deps for
    # the package itself: a new import in config.py broke its build (make compose-check caught it).
    modules = sorted(
        {
            m
            for f in (ROOT / "dashboard").glob("*.py")
            for m in re.findall(r"^from (btc_pipeline[\w.]*) import", f.read_text(), re.M)
        }
    )
    done = subprocess.run(
        [sys.executable, "-c", _DASHBOARD_IMPORTS, *modules], capture_output=True, text=True, check=True, cwd=ROOT
    )
    declared = {
        re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0].lower()
        for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    needed = {d.lower() for d in json.loads(done.stdout)} & declared
    found = re.search(r'^ARG DASHBOARD_REQUIREMENTS="([^"]*)"', DASHBOARD_DOCKERFILE.read_text(), re.M)
    assert found, "dashboard/Dockerfile has no ARG DASHBOARD_REQUIREMENTS"
    missing = needed - {r.lower() for r in found.group(1).split()}
    assert not missing, f"dashboard/Dockerfile's DASHBOARD_REQUIREMENTS lacks {sorted(missing)}"


@pytest.mark.parametrize(
    "path", [COMPOSE_FILE, ENV_EXAMPLE, AIRFLOW_DOCKERFILE, DASHBOARD_DOCKERFILE, DOCKERIGNORE], ids=relative
)
def test_no_pip_additional_requirements(path: Path) -> None:
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in path.read_text()


@pytest.mark.parametrize(
    ("env", "topics"),
    [({}, TOPICS), ({"BTC_TOPIC": "prices-in", "BTC_DLQ_TOPIC": "prices-in-bad"}, ("prices-in", "prices-in-bad"))],
    ids=["defaults", "renamed"],
)
def test_topic_init_creates_the_configured_topics(
    generated_env: dict[str, str], tmp_path: Path, env: dict[str, str], topics: Any
) -> None:
    topic_init = resolve(env_file_with(tmp_path, {**generated_env, **env}))["services"]["topic-init"]
    script = as_text(topic_init.get("entrypoint")) + " " + as_text(topic_init["command"])
    assert "rpk topic create" in script
    for topic in topics:
        # btc-metrics is a prefix of btc-metrics-dlq: match the whole name.
        assert re.search(rf"(?<![\w-]){re.escape(topic)}(?![\w-])", script), f"{topic} is never created"


def test_dockerignore_keeps_secrets_and_state_out_of_the_build() -> None:
    ignored = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()}
    assert {".env", ".venv", "state", ".git"} <= ignored


# --- the Airflow and pipeline environment -----------------------------------------------------


def test_airflow_components_share_their_settings(services: dict[str, Any]) -> None:
    envs = {name: environment_of(services[name]) for name in AIRFLOW_SERVICES}
    for key in SHARED_AIRFLOW_ENV:
        values = {name: env.get(key) for name, env in envs.items()}
        assert None not in values.values(), f"{key} missing in {[n for n, v in values.items() if v is None]}"
        assert len(set(values.values())) == 1, f"{key} differs between Airflow components: {values}"
    env = envs["airflow-scheduler"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "False"
    # bounded: LocalExecutor forks this many workers up front (the default 32 is gigabytes)
    assert 1 <= int(env["AIRFLOW__CORE__PARALLELISM"]) <= 8
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"


@pytest.mark.parametrize("name", [*AIRFLOW_SERVICES, *MONGO_READERS])
def test_containers_use_the_network_addresses(resolved: dict[str, Any], name: str) -> None:
    # .env holds the local stack's 127.0.0.1 addresses: compose must not pass them through.
    env = resolved[name]["environment"]
    assert env["BTC_KAFKA_BOOTSTRAP"] == "redpanda:9092"
    uri = env["BTC_MONGO_URI"]
    assert re.fullmatch(r"mongodb://[^:@/]+:[^@/]+@mongodb:27017/\?authSource=admin", uri), uri


def test_airflow_connections(resolved: dict[str, Any], generated_env: dict[str, str]) -> None:
    env = resolved["airflow-scheduler"]["environment"]
    kafka = json.loads(env["AIRFLOW_CONN_BTC_KAFKA"])
    assert kafka == {"conn_type": "kafka", "extra": {"bootstrap.servers": "redpanda:9092"}}
    mongo = json.loads(env["AIRFLOW_CONN_BTC_MONGO"])
    assert mongo == {
        "conn_type": "mongo",
        "host": "mongodb",
        "port": 27017,
        "login": generated_env["MONGO_ROOT_USER"],
        "password": generated_env["MONGO_ROOT_PASSWORD"],
        "schema": generated_env["BTC_MONGO_DB"],
        "extra": {"authSource": "admin"},
    }


def test_the_tasks_connections_and_the_pipeline_settings_name_the_same_servers(
    generated_env: dict[str, str], tmp_path: Path
) -> None:
    """Tasks use the connections btc_mongo/btc_kafka, the CLI in the same container BTC_MONGO_URI and
    BTC_KAFKA_BOOTSTRAP: the same server, user, password and database, from the same .env values."""
    from pymongo.uri_parser import parse_uri

    dotenv = {**generated_env, "BTC_MONGO_DB": "prices", "MONGO_ROOT_USER": "root_x"}  # not the defaults
    services = resolve(env_file_with(tmp_path, dotenv))["services"]
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        conn, uri = json.loads(env["AIRFLOW_CONN_BTC_MONGO"]), parse_uri(env["BTC_MONGO_URI"])
        assert [(conn["host"], conn["port"])] == uri["nodelist"], name
        assert (
            (conn["login"], conn["password"])
            == (uri["username"], uri["password"])
            == ("root_x", dotenv["MONGO_ROOT_PASSWORD"])
        )
        assert conn["extra"]["authSource"] == uri["options"]["authSource"], name
        assert conn["schema"] == env["BTC_MONGO_DB"] == "prices", name
        assert json.loads(env["AIRFLOW_CONN_BTC_KAFKA"])["extra"]["bootstrap.servers"] == env["BTC_KAFKA_BOOTSTRAP"]


def test_the_api_is_uvicorn_serving_the_package_app(services: dict[str, Any]) -> None:
    api = services["api"]
    command = as_text(api["command"])
    # the Airflow image's entrypoint runs a `python ...` command itself (anything else becomes `airflow ...`)
    assert command.startswith("python -m uvicorn --factory btc_pipeline.api.app:create_app")
    assert "--host 0.0.0.0 --port 8000" in command
    assert api["ports"] == ["${BIND_ADDRESS:-127.0.0.1}:${API_PORT:-8000}:8000"]
    assert environment_of(api)["CONNECTION_CHECK_MAX_COUNT"] == "0"  # no wait for Airflow's metadata database
    assert api["depends_on"] == {
        "check-secrets": {"condition": "service_completed_successfully"},
        "mongodb": {"condition": "service_healthy"},
    }


def test_readers_use_the_read_only_user_and_airflow_the_root_user(
    resolved: dict[str, Any], generated_env: dict[str, str]
) -> None:
    for name in MONGO_READERS:
        uri = resolved[name]["environment"]["BTC_MONGO_URI"]
        user = f"{generated_env['MONGO_READER_USER']}:{generated_env['MONGO_READER_PASSWORD']}@"
        assert uri.startswith(f"mongodb://{user}"), f"{name} does not read as the read-only user"
    for name in AIRFLOW_SERVICES:
        uri = resolved[name]["environment"]["BTC_MONGO_URI"]
        assert uri.startswith(f"mongodb://{generated_env['MONGO_ROOT_USER']}:"), name
    assert generated_env["MONGO_READER_USER"] != generated_env["MONGO_ROOT_USER"]


def test_mongodb_creates_the_read_only_user_on_first_start(services: dict[str, Any]) -> None:
    mongodb = services["mongodb"]
    assert "./mongo-init:/docker-entrypoint-initdb.d:ro" in mongodb["volumes"]
    env = environment_of(mongodb)
    script = MONGO_INIT.read_text()
    for key in ("MONGO_READER_USER", "MONGO_READER_PASSWORD", "BTC_MONGO_DB"):
        assert key in env and f"process.env.{key}" in script, key
    assert re.search(r'role:\s*"read",\s*db:\s*database', script), "the user must have the read role only"
    assert "createUser" in script and "readWrite" not in script


# --- .env.example -----------------------------------------------------------------------------


def test_every_compose_variable_is_in_env_example(compose: dict[str, Any], env_example: dict[str, str]) -> None:
    used = set().union(*(variable_names(value) for value in string_values(compose)))
    assert used, "found no ${VAR} in docker-compose.yml: the scan is broken"
    assert not used - set(env_example), (
        f"used in docker-compose.yml, missing from .env.example: {used - set(env_example)}"
    )


def test_compose_defaults_agree_with_env_example(compose: dict[str, Any], env_example: dict[str, str]) -> None:
    disagreements = {
        f"{name}: compose {default!r}, .env.example {env_example[name]!r}"
        for value in string_values(compose)
        for name, default in variable_defaults(value)
        if name in env_example and env_example[name] != default
    }
    assert not disagreements, disagreements


# --- the compose-spec loader ------------------------------------------------------------------


def composecheck(env_file: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    if not COMPOSECHECK.is_file():
        pytest.fail("run `make tools` to build state/bin/composecheck")
    return subprocess.run(
        [str(COMPOSECHECK), *flags, str(COMPOSE_FILE), str(env_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_composecheck_loads_the_compose_file_with_a_generated_env(generated_env_file: Path) -> None:
    result = composecheck(generated_env_file)
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == EXPECTED_SERVICES


def test_composecheck_refuses_the_example_env_naming_each_secret_and_make_env() -> None:
    """``cp .env.example .env && docker compose up`` stops at interpolation, before any container."""
    from btc_pipeline.deploy_secrets import SECRET_KEYS

    result = composecheck(ENV_EXAMPLE)
    assert result.returncode != 0
    for key in SECRET_KEYS:
        assert f"required variable {key} is missing a value: run make env" in result.stderr, key
    assert not result.stdout.strip()


# --- secure defaults: the secrets and the published addresses --------------------------------


def test_the_example_env_leaves_every_secret_empty(env_example: dict[str, str]) -> None:
    from btc_pipeline.deploy_secrets import SECRET_KEYS, secret_problems

    assert {key: env_example[key] for key in SECRET_KEYS} == dict.fromkeys(SECRET_KEYS, "")
    refused = secret_problems(env_example)
    for key in SECRET_KEYS:
        assert any(line.startswith(f"{key} is empty") and "make env" in line for line in refused), key


def test_a_generated_env_passes_the_secret_check(env_example: dict[str, str], generated_env: dict[str, str]) -> None:
    from btc_pipeline.deploy_secrets import SECRET_KEYS, secret_problems

    assert secret_problems(generated_env) == []
    # only the secrets differ from the example
    assert {k for k in env_example if env_example[k] != generated_env[k]} == set(SECRET_KEYS)


def test_compose_gives_no_secret_a_default(compose: dict[str, Any]) -> None:
    """Each secret is ``${KEY:?...make env...}`` wherever it is used: never ``${KEY:-something}``."""
    from btc_pipeline.deploy_secrets import SECRET_KEYS

    uses: dict[str, list[str]] = {}
    for value in string_values(compose):
        for match in _INTERPOLATION.finditer(value):
            if match["braced"] in SECRET_KEYS:
                uses.setdefault(match["braced"], []).append(f"{match['op']}{match['arg']}")
    assert set(uses) == set(SECRET_KEYS), f"secrets compose never reads: {set(SECRET_KEYS) - set(uses)}"
    wrong = {
        key: forms for key, forms in uses.items() if any(not f.startswith(":?") or "make env" not in f for f in forms)
    }
    assert not wrong, wrong


def test_every_service_waits_for_the_secret_check(services: dict[str, Any]) -> None:
    check = services["check-secrets"]
    assert "check-secrets" in as_text(check["command"]) and "btc_pipeline.cli" in as_text(check["command"])
    assert check.get("restart") == "no" and "depends_on" not in check
    missing = [
        name
        for name, service in services.items()
        if name != "check-secrets"
        and (service.get("depends_on") or {}).get("check-secrets", {}).get("condition")
        != "service_completed_successfully"
    ]
    assert not missing, f"start without the secret check: {missing}"


def test_the_secret_check_gets_each_secret_and_nothing_else(services: dict[str, Any]) -> None:
    from btc_pipeline.deploy_secrets import SECRETS

    env = environment_of(services["check-secrets"])
    users = {secret.user_key for secret in SECRETS if secret.user_key}
    assert set(env) == {secret.key for secret in SECRETS} | users | {"CONNECTION_CHECK_MAX_COUNT"}


@pytest.mark.parametrize(
    ("env", "user_facing", "backends"),
    [({}, "127.0.0.1", "127.0.0.1"), ({"BIND_ADDRESS": "0.0.0.0"}, "0.0.0.0", "127.0.0.1")],
    ids=["default", "bind-address-set"],
)
def test_every_published_port_binds_to_loopback_unless_bind_address_says_otherwise(
    services: dict[str, Any],
    generated_env: dict[str, str],
    tmp_path: Path,
    env: dict[str, str],
    user_facing: str,
    backends: str,
) -> None:
    published = {}
    for name, service in resolve(env_file_with(tmp_path, {**generated_env, **env}))["services"].items():
        for entry in service.get("ports", []):
            published.setdefault(name, []).append(entry["host_ip"])
    assert set(USER_FACING) <= set(published)
    for name, addresses in published.items():
        expected = user_facing if name in USER_FACING else backends
        assert addresses == [expected] * len(addresses), f"{name} publishes on {addresses}"
    for name in USER_FACING:
        assert all(entry.startswith("${BIND_ADDRESS:-127.0.0.1}:") for entry in services[name]["ports"]), name
