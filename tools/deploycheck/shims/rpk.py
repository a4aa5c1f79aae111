#!/usr/bin/python3
"""``rpk`` in the Kafka stand-in for Redpanda: the two commands docker-compose.yml uses, and no other.

- ``rpk cluster health [-X brokers=HOST:PORT]``: asks the broker for its metadata over the Kafka
  protocol (Metadata v4, standard library sockets) and prints Redpanda's overview, ``Healthy: true``
  when a broker answers and every partition has a leader. The compose health check greps that line.
- ``rpk topic create NAME... [-p N] [-r N] [-c KEY=VALUE]... [-X brokers=HOST:PORT]``: creates the
  topics with Kafka's own ``TopicCommand`` and prints rpk's table: ``NAME OK``, or
  ``NAME TOPIC_ALREADY_EXISTS`` (exit 1, as rpk does) when it exists. compose's topic-init relies on
  both.

It is not rpk: other subcommands and flags exit 2 and say so (see
``tools/deploycheck/standins/README.md``).
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
from dataclasses import dataclass, field

KAFKA_LIBS = "/opt/kafka/libs"
DEFAULT_BROKERS = "localhost:9092"
METADATA_API_KEY = 3
METADATA_VERSION = 4


class RpkUsageError(ValueError):
    """A command or flag this stand-in does not implement."""


# --- the Kafka protocol, as much as a Metadata v4 round trip needs ---------------------------------


def metadata_request(correlation_id: int, client_id: str = "rpk-standin") -> bytes:
    """A size-prefixed Metadata v4 request for every topic (request header v1)."""
    client = client_id.encode()
    body = struct.pack(">hhih", METADATA_API_KEY, METADATA_VERSION, correlation_id, len(client)) + client
    body += struct.pack(">ib", -1, 0)  # topics: null = all; allow_auto_topic_creation: false
    return struct.pack(">i", len(body)) + body


@dataclass
class Metadata:
    """What a Metadata v4 answer says about the cluster."""

    brokers: list[tuple[int, str, int]]
    controller_id: int
    cluster_id: str | None
    #: (topic, partition) -> leader id (-1: none)
    leaders: dict[tuple[str, int], int] = field(default_factory=dict)

    @property
    def leaderless(self) -> list[tuple[str, int]]:
        return sorted(tp for tp, leader in self.leaders.items() if leader < 0)

    @property
    def healthy(self) -> bool:
        return bool(self.brokers) and not self.leaderless


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> tuple[int, ...]:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ValueError("truncated Metadata response")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def int16(self) -> int:
        return self.take(">h")[0]

    def int32(self) -> int:
        return self.take(">i")[0]

    def string(self) -> str | None:
        n = self.int16()
        if n < 0:
            return None
        if self.pos + n > len(self.data):
            raise ValueError("truncated Metadata response")
        raw = self.data[self.pos : self.pos + n]
        self.pos += n
        return raw.decode("utf-8", "replace")

    def int32_array(self) -> list[int]:
        return [self.int32() for _ in range(max(0, self.int32()))]


def parse_metadata(payload: bytes, correlation_id: int) -> Metadata:
    """Decode a Metadata v4 response (without its size prefix).

    Raises:
        ValueError: Not the answer to ``correlation_id``, or truncated.
    """
    r = _Reader(payload)
    if r.int32() != correlation_id:
        raise ValueError("Metadata response for another request")
    r.int32()  # throttle_time_ms
    brokers = []
    for _ in range(max(0, r.int32())):
        node, host, port = r.int32(), r.string(), r.int32()
        r.string()  # rack
        brokers.append((node, host or "", port))
    cluster = r.string()
    controller = r.int32()
    leaders: dict[tuple[str, int], int] = {}
    for _ in range(max(0, r.int32())):
        r.int16()  # error_code
        name = r.string() or ""
        r.take(">b")  # is_internal
        for _ in range(max(0, r.int32())):
            r.int16()
            index, leader = r.int32(), r.int32()
            r.int32_array()  # replicas
            r.int32_array()  # isr
            leaders[(name, index)] = leader
    return Metadata(brokers, controller, cluster, leaders)


def fetch_metadata(address: str, timeout_s: float = 5.0) -> Metadata:
    """One Metadata v4 round trip with the broker at ``host:port``.

    Raises:
        OSError: The broker cannot be reached or closed the connection.
        ValueError: The answer cannot be decoded.
    """
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=timeout_s) as conn:
        conn.sendall(metadata_request(1))
        size = struct.unpack(">i", _recv_exactly(conn, 4))[0]
        return parse_metadata(_recv_exactly(conn, size), 1)


def _recv_exactly(conn: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = conn.recv(n - got)
        if not chunk:
            raise OSError("the broker closed the connection")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def health_report(meta: Metadata) -> str:
    """Redpanda's ``rpk cluster health`` overview of ``meta``."""
    nodes = sorted(b[0] for b in meta.brokers)
    leaderless = [f"{t}/{p}" for t, p in meta.leaderless]
    reasons = [] if meta.healthy else (["leaderless_partitions"] if leaderless else ["no_brokers"])
    return (
        "CLUSTER HEALTH OVERVIEW\n=======================\n"
        f"Healthy:                          {str(meta.healthy).lower()}\n"
        f"Unhealthy reasons:                [{' '.join(reasons)}]\n"
        f"Controller ID:                    {meta.controller_id}\n"
        f"All nodes:                        [{' '.join(map(str, nodes))}]\n"
        "Nodes down:                       []\n"
        f"Leaderless partitions ({len(leaderless)}):        [{' '.join(leaderless)}]\n"
        "Under-replicated partitions (0):  []\n"
    )


# --- the command line ------------------------------------------------------------------------------


@dataclass
class Command:
    """A parsed ``rpk`` command line."""

    words: list[str]
    brokers: str = DEFAULT_BROKERS
    partitions: int = 1
    replicas: int = 1
    configs: list[str] = field(default_factory=list)


def parse_args(argv: list[str]) -> Command:
    """Parse the subset of rpk's command line that docker-compose.yml uses.

    Raises:
        RpkUsageError: Anything else.
    """
    cmd = Command(words=[])
    items = iter(argv)
    for item in items:
        name, sep, inline = item.partition("=") if item.startswith("--") else (item, "", "")

        def value(flag: str = name, given: str = inline, has: str = sep) -> str:
            got = given if has else next(items, None)
            if got is None:
                raise RpkUsageError(f"flag {flag} needs a value")
            return got

        if name == "-X":
            key, eq, setting = value().partition("=")
            if key != "brokers" or not eq:
                raise RpkUsageError(f"-X {key}: only -X brokers=HOST:PORT is implemented")
            cmd.brokers = setting.split(",")[0]
        elif name in ("-p", "--partitions"):
            cmd.partitions = int(value())
        elif name in ("-r", "--replicas"):
            cmd.replicas = int(value())
        elif name in ("-c", "--topic-config"):
            cmd.configs.append(value())
        elif name.startswith("-"):
            raise RpkUsageError(f"flag {name} is not implemented by the rpk stand-in")
        else:
            cmd.words.append(item)
    return cmd


def create_topic(cmd: Command, topic: str) -> tuple[bool, str]:
    """Create one topic with Kafka's TopicCommand: ``(created, rpk status word)``."""
    argv = ["java", "-Xmx128m", "-cp", f"{KAFKA_LIBS}/*", "-Dlog4j2.level=ERROR", "org.apache.kafka.tools.TopicCommand"]
    argv += ["--bootstrap-server", cmd.brokers, "--create", "--topic", topic]
    argv += ["--partitions", str(cmd.partitions), "--replication-factor", str(cmd.replicas)]
    for config in cmd.configs:
        argv += ["--config", config]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode == 0:
        return True, "OK"
    if "already exists" in done.stdout + done.stderr:
        return False, "TOPIC_ALREADY_EXISTS"
    detail = (done.stderr.strip() or done.stdout.strip()).splitlines()
    return False, detail[-1] if detail else f"TopicCommand exited {done.returncode}"


def main(argv: list[str]) -> int:
    try:
        cmd = parse_args(argv)
        if cmd.words == ["cluster", "health"]:
            try:
                meta = fetch_metadata(cmd.brokers)
            except (OSError, ValueError) as exc:
                print(f"unable to request cluster health from {cmd.brokers}: {exc}", file=sys.stderr)
                return 1
            print(health_report(meta), end="")
            return 0
        if cmd.words[:2] == ["topic", "create"] and len(cmd.words) > 2:
            results = [(t, *create_topic(cmd, t)) for t in cmd.words[2:]]
            print("TOPIC  STATUS")
            for topic, _, status in results:
                print(f"{topic}  {status}")
            return 0 if all(created for _, created, _ in results) else 1
        raise RpkUsageError(f"`rpk {' '.join(cmd.words)}` is not implemented by the stand-in")
    except (RpkUsageError, ValueError) as exc:
        print(f"rpk (stand-in, tools/deploycheck/standins/README.md): {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
