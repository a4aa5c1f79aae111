"""Kafka in KRaft mode (one broker that is its own controller), from the jars ``make setup`` fetched, with
the pipeline's topics created once it is ready."""

from __future__ import annotations

import base64
import shutil
import uuid

from devstack.config import StackConfig, StackError
from devstack.processes import port_is_open
from devstack.service import Service, Supervisor

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
"""
LOG4J_PROPERTIES = """\
rootLogger.level=WARN
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka
logger.kafka.level=INFO
"""


def kafka_cluster_id() -> str:
    """A random KRaft cluster id, as ``kafka-storage random-uuid`` makes it: URL-safe base64 of a
    UUID that does not start with ``-`` (the tool's argument parser would take it for an option)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def kafka_service(config: StackConfig, supervisor: Supervisor) -> Service:
    """The broker; its first start formats its data directory."""
    from confluent_kafka.admin import AdminClient

    home = config.state / "kafka"
    data, properties, log4j = home / "data", home / "server.properties", home / "log4j2.properties"
    jvm_args = ["-cp", f"{config.kafka_libs}/*", f"-Dlog4j2.configurationFile={log4j}"]

    def prepare() -> None:
        if not any(config.kafka_libs.glob("kafka_2.13-*.jar")):
            raise StackError(f"Kafka jars missing in {config.kafka_libs}: run `make setup` (mvn, Maven Central)")
        if not shutil.which("java"):
            raise StackError("java not found on PATH: install a JRE 17+ (Debian: openjdk-17-jre-headless)")
        home.mkdir(parents=True, exist_ok=True)
        port, controller = config.ports["kafka"], config.kafka_controller_port
        properties.write_text(SERVER_PROPERTIES.format(port=port, controller=controller, data=data))
        log4j.write_text(LOG4J_PROPERTIES)
        if not (data / "meta.properties").exists():
            cluster_id = kafka_cluster_id()
            storage = ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties), "--standalone"]
            supervisor.run_once("kafka-format", ["java", *jvm_args, *storage], timeout_s=120, env={})

    def admin() -> AdminClient:
        return AdminClient({"bootstrap.servers": config.kafka_bootstrap})

    def ready() -> bool:
        if not port_is_open(config.ports["kafka"]):
            return False
        try:
            admin().list_topics(timeout=3)
            return True
        except Exception:  # noqa: BLE001 - any failure just means "not ready yet"
            return False

    def after_ready() -> None:
        from btc_pipeline.stream import ensure_topics

        ensure_topics(admin(), config.topics)

    return Service(
        name="kafka",
        argv=["java", "-Xms256m", "-Xmx768m", *jvm_args, "kafka.Kafka", str(properties)],
        ready=ready,
        ports=(config.ports["kafka"], config.kafka_controller_port),
        timeout_s=120,
        prepare=prepare,
        after_ready=after_ready,
    )
