"""MongoDB's wire protocol for the local stack: FerretDB on SQLite (``make setup`` builds it)."""

from __future__ import annotations

from devstack.config import StackConfig, StackError
from devstack.processes import port_is_open
from devstack.service import Service


def ferretdb_service(config: StackConfig) -> Service:
    """FerretDB on ``ports["mongo"]``, its data in ``<state>/ferretdb``."""

    def prepare() -> None:
        if not config.ferretdb_bin.exists():
            raise StackError(f"{config.ferretdb_bin} missing: run `make setup` (go build of tools/ferretdb)")

    def ready() -> bool:
        if not port_is_open(config.ports["mongo"]):
            return False
        from pymongo import MongoClient
        from pymongo.errors import PyMongoError

        try:
            client: MongoClient[dict[str, object]]
            with MongoClient(config.mongo_uri, serverSelectionTimeoutMS=2000) as client:
                client.admin.command("ping")
            return True
        except PyMongoError:
            return False

    listen = ["-listen-addr", f"127.0.0.1:{config.ports['mongo']}"]
    return Service(
        name="ferretdb",
        argv=[str(config.ferretdb_bin), *listen, "-data-dir", str(config.state / "ferretdb")],
        ready=ready,
        ports=(config.ports["mongo"],),
        timeout_s=60,
        prepare=prepare,
    )
