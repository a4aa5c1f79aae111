"""btc-pipeline: exchanges -> Kafka -> MongoDB, orchestrated by Airflow."""
