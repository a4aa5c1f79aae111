"""Notifications: price alerts, failed DAG runs and stale data sent where people look (Slack,
Telegram, e-mail, webhooks: any Apprise URL in ``BTC_NOTIFY_URLS``).

- :mod:`~btc_pipeline.notify.messages`: what each message says (pure);
- :mod:`~btc_pipeline.notify.episodes`: when a lasting problem is worth a message (pure);
- :mod:`~btc_pipeline.notify.deliver`: sending with bounded retries, recording each delivery;
- :mod:`~btc_pipeline.notify.events`: the pipeline's events turned into deliveries.

The Airflow side (the failure notifier of every DAG) is :mod:`btc_pipeline.tasks.notifier`.
"""
