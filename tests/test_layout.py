"""One home per concern, checked on the source: MongoDB is used only under ``btc_pipeline.store``,
Kafka clients only under ``btc_pipeline.stream`` (and the hooks that build them), Airflow only in
the task layer, and nothing reads outside the repository."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "plugins" / "btc_pipeline"
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def runtime_imports(path: Path) -> set[str]:
    """Top-level names of the modules ``path`` imports when it runs (not under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text())
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only |= {id(n) for child in node.body for n in ast.walk(child)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


def uses(path: Path, package: str) -> bool:
    return any(name == package or name.startswith(package + ".") for name in runtime_imports(path))


def test_the_package_has_its_concerns_in_folders():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert {"exchanges", "stream", "store", "steps", "tasks", "cli", "api"} <= folders
    assert not (PACKAGE / "providers").exists() and not (PACKAGE / "simexchange").exists()


#: The redaction helper reads MongoDB URIs with PyMongo's parser (text only: it opens no connection).
URI_PARSER_ONLY = {"redact.py": {"pymongo.uri_parser", "pymongo.errors"}}


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_mongodb_is_used_only_in_the_store(path):
    if rel(path).startswith("store/"):
        return
    allowed = URI_PARSER_ONLY.get(rel(path), set())
    used = {name for name in runtime_imports(path) if name == "pymongo" or name.startswith("pymongo.")}
    assert used <= allowed, f"{rel(path)} imports {sorted(used - allowed)}: MongoDB belongs to btc_pipeline.store"


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_kafka_clients_are_used_only_in_the_stream_code(path):
    if rel(path).startswith("stream/"):
        return
    assert not uses(path, "confluent_kafka"), f"{rel(path)} imports confluent_kafka: Kafka is btc_pipeline.stream's"


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_airflow_is_imported_only_by_the_task_layer(path):
    if rel(path).startswith("tasks/"):
        return
    assert not uses(path, "airflow"), f"{rel(path)} imports Airflow: the steps stay plain functions"


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_exchanges_know_neither_kafka_nor_mongodb(path):
    if not rel(path).startswith("exchanges/"):
        return
    forbidden = {"btc_pipeline.stream", "btc_pipeline.store", "btc_pipeline.steps", "btc_pipeline.tasks"}
    assert not {n for n in runtime_imports(path) if any(n.startswith(f) for f in forbidden)}


def test_the_dev_stack_is_not_in_the_package_nor_in_the_images():
    assert not any("devstack" in name or "simexchange" in name for p in MODULES for name in runtime_imports(p))
    for dockerfile in (ROOT / "Dockerfile", ROOT / "dashboard" / "Dockerfile"):
        assert "tools/" not in dockerfile.read_text(), f"{dockerfile} copies the dev tooling"


def test_dashboard_reads_through_the_store():
    names = runtime_imports(ROOT / "dashboard" / "app.py")
    assert "btc_pipeline.store" in names
    assert not {n for n in names if n.startswith(("pymongo", "confluent_kafka", "airflow"))}


def test_nothing_reads_outside_the_repository():
    suffixes = {".py", ".md", ".toml", ".yml", ".yaml", ".cfg", ".txt", ""}
    offenders = []
    for path in ROOT.rglob("*"):
        parts = path.relative_to(ROOT).parts
        if not path.is_file() or parts[0] in (".git", ".venv", "state") or "__pycache__" in parts:
            continue
        if path.suffix not in suffixes and path.name != "Makefile":
            continue
        if path.name == "PROVENANCE.md" or path == Path(__file__):
            continue  # says where the copied fixtures came from; this test names the patterns
        text = path.read_text(errors="replace")
        if "../shared" in text or "shared/realdata" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"paths outside the repository in {offenders}"
