#!/usr/bin/python3
"""Entrypoint of the Kafka stand-in for Redpanda (see ``tools/deploycheck/standins/README.md``).

It takes the Redpanda image's command line as docker-compose.yml writes it (``redpanda start
--kafka-addr=internal://0.0.0.0:9092,external://0.0.0.0:19092 --advertise-kafka-addr=... ...``),
turns the listener flags into an Apache Kafka KRaft configuration (one combined broker and
controller) and runs Kafka from the project's jars. Any other command is run as it is, like the real
image's entrypoint does. A flag it does not know stops it with an error: a changed command line is
noticed, not silently dropped. Standard library only (the image has python3, no packages).
"""

from __future__ import annotations

import base64
import os
import sys
import uuid
from pathlib import Path

KAFKA_LIBS = "/opt/kafka/libs"
DATA_DIR = Path("/var/lib/redpanda/data")
#: The KRaft controller's own listener, on the container's loopback (not published, not advertised).
CONTROLLER = "CONTROLLER://127.0.0.1:19093"
#: Redpanda flags that change nothing Kafka needs to know (resources, Redpanda's RPC and admin ports).
IGNORED_FLAGS = frozenset(
    {
        "--mode",
        "--smp",
        "--overprovisioned",
        "--reserve-memory",
        "--rpc-addr",
        "--advertise-rpc-addr",
        "--node-id",
        "--check",
        "--unsafe-bypass-fsync",
        "--pandaproxy-addr",
        "--advertise-pandaproxy-addr",
        "--schema-registry-addr",
        "--admin-addr",
    }
)
VALUE_FLAGS = frozenset(
    {
        *IGNORED_FLAGS - {"--overprovisioned"},
        "--kafka-addr",
        "--advertise-kafka-addr",
        "--memory",
        "--default-log-level",
    }
)
LOG_LEVELS = {"trace": "TRACE", "debug": "DEBUG", "info": "INFO", "warn": "WARN", "error": "ERROR"}


class RedpandaArgsError(ValueError):
    """The ``redpanda start`` command line holds something this stand-in cannot translate."""


def parse_flags(args: list[str]) -> dict[str, str]:
    """``--flag=value`` / ``--flag value`` / ``--switch`` -> ``{"--flag": "value", "--switch": "true"}``.

    Raises:
        RedpandaArgsError: An unknown flag, a positional argument, or a flag without its value.
    """
    flags: dict[str, str] = {}
    items = iter(args)
    for item in items:
        if not item.startswith("--"):
            raise RedpandaArgsError(f"unexpected argument {item!r} after `redpanda start`")
        name, sep, value = item.partition("=")
        if name not in VALUE_FLAGS and name != "--overprovisioned":
            raise RedpandaArgsError(f"flag {name} is not known to the Kafka stand-in for Redpanda")
        if not sep and name in VALUE_FLAGS:
            value = next(items, "")
            if not value or value.startswith("--"):
                raise RedpandaArgsError(f"flag {name} needs a value")
        flags[name] = value or "true"
    return flags


def parse_listeners(spec: str) -> dict[str, tuple[str, int]]:
    """``internal://0.0.0.0:9092,external://0.0.0.0:19092`` -> ``{"INTERNAL": ("0.0.0.0", 9092), ...}``.

    A listener without a name is Redpanda's default one, ``PLAINTEXT``.

    Raises:
        RedpandaArgsError: A part without ``host:port`` or with a bad port.
    """
    listeners: dict[str, tuple[str, int]] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, address = part.partition("://")
        if not sep:
            name, address = "PLAINTEXT", part
        host, colon, port = address.rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65_536:
            raise RedpandaArgsError(f"listener {part!r} is not [name://]host:port")
        listeners[name.upper()] = (host, int(port))
    if not listeners:
        raise RedpandaArgsError(f"no listener in {spec!r}")
    return listeners


def heap_megabytes(memory: str | None) -> int:
    """Kafka's heap from Redpanda's ``--memory`` (``1G``, ``512M``): half of it, 256-1024 MB."""
    if not memory:
        return 512
    units = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}
    number, unit = memory[:-1], memory[-1].upper()
    if unit not in units:
        number, unit = memory, "M"
    try:
        total = float(number) * units[unit]
    except ValueError:
        raise RedpandaArgsError(f"--memory={memory} is not a size like 1G") from None
    return int(min(1024, max(256, total / 2)))


def kafka_config(args: list[str], data_dir: Path = DATA_DIR) -> tuple[dict[str, str], int, str]:
    """Kafka's ``server.properties``, the heap in MB and the log level for ``redpanda start ARGS``.

    Raises:
        RedpandaArgsError: See :func:`parse_flags` and :func:`parse_listeners`; also an advertised
            listener whose name is not one of the listeners.
    """
    flags = parse_flags(args)
    listeners = parse_listeners(flags.get("--kafka-addr", "0.0.0.0:9092"))
    advertised = parse_listeners(flags.get("--advertise-kafka-addr", flags.get("--kafka-addr", "0.0.0.0:9092")))
    unknown = sorted(set(advertised) - set(listeners))
    if unknown:
        raise RedpandaArgsError(f"--advertise-kafka-addr names {', '.join(unknown)}, which --kafka-addr does not")
    level = flags.get("--default-log-level", "info").lower()
    if level not in LOG_LEVELS:
        raise RedpandaArgsError(f"--default-log-level={level} is not one of {', '.join(LOG_LEVELS)}")
    first = next(iter(listeners))
    protocol_map = ",".join(f"{name}:PLAINTEXT" for name in [*listeners, "CONTROLLER"])
    config = {
        "process.roles": "broker,controller",
        "node.id": "0",
        "controller.quorum.bootstrap.servers": CONTROLLER.split("://", 1)[1],
        "controller.listener.names": "CONTROLLER",
        "listeners": ",".join([*(f"{n}://{h}:{p}" for n, (h, p) in listeners.items()), CONTROLLER]),
        "advertised.listeners": ",".join(f"{n}://{h}:{p}" for n, (h, p) in advertised.items()),
        "listener.security.protocol.map": protocol_map,
        "inter.broker.listener.name": first,
        "log.dirs": str(data_dir / "kafka"),
        # Redpanda's dev-container mode creates topics on first use; so does this broker
        "auto.create.topics.enable": "true",
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "3",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    return config, heap_megabytes(flags.get("--memory")), LOG_LEVELS[level]


def cluster_id() -> str:
    """A KRaft cluster id as ``kafka-storage random-uuid`` makes one."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def java(heap_mb: int, log4j: Path, main: str, *args: str) -> list[str]:
    """The ``java`` command line of one of Kafka's main classes."""
    return [
        "java",
        f"-Xms{heap_mb // 2}m",
        f"-Xmx{heap_mb}m",
        "-cp",
        f"{KAFKA_LIBS}/*",
        f"-Dlog4j2.configurationFile={log4j}",
        main,
        *args,
    ]


def start(args: list[str]) -> None:
    """Write the configuration, format the data directory on first start, then become Kafka."""
    config, heap_mb, level = kafka_config(args)
    conf_dir = Path("/opt/kafka/config")
    conf_dir.mkdir(parents=True, exist_ok=True)
    properties = conf_dir / "server.properties"
    properties.write_text("".join(f"{k}={v}\n" for k, v in config.items()))
    log4j = conf_dir / "log4j2.properties"
    log4j.write_text(
        f"rootLogger.level={level}\nrootLogger.appenderRef.stdout.ref=STDOUT\n"
        "appender.stdout.type=Console\nappender.stdout.name=STDOUT\n"
        "appender.stdout.layout.type=PatternLayout\nappender.stdout.layout.pattern=[%d] %p %m (%c)%n\n"
        # one line that says the broker is up, whatever the level
        "logger.server.name=kafka.server.KafkaRaftServer\nlogger.server.level=INFO\n"
    )
    print(
        "Kafka stand-in for Redpanda (tools/deploycheck/standins/README.md): listeners "
        f"{config['listeners']}, advertised {config['advertised.listeners']}",
        flush=True,
    )
    if not (Path(config["log.dirs"]) / "meta.properties").exists():
        import subprocess

        fmt = java(
            256, log4j, "kafka.tools.StorageTool", "format", "-t", cluster_id(), "-c", str(properties), "--standalone"
        )
        subprocess.run(fmt, check=True, stdout=subprocess.DEVNULL)
    argv = java(heap_mb, log4j, "kafka.Kafka", str(properties))
    os.execvp(argv[0], argv)  # noqa: S606 - become the command, as an entrypoint does


def main(argv: list[str]) -> int:
    if argv[:2] == ["redpanda", "start"]:
        try:
            start(argv[2:])
        except RedpandaArgsError as exc:
            print(f"redpanda (Kafka stand-in): {exc}", file=sys.stderr)
            return 2
    if not argv:
        print("redpanda (Kafka stand-in): no command; expected `redpanda start ...`", file=sys.stderr)
        return 2
    os.execvp(argv[0], argv)  # noqa: S606 - become the command, as an entrypoint does
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
