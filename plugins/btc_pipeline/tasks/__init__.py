"""The Airflow task layer: the bodies of the DAGs' tasks.

Each body reads the settings, turns the Airflow connections (``btc_kafka``, ``btc_mongo``) into
clients through the providers' hooks (:mod:`~btc_pipeline.tasks.hooks`), and calls a step of
:mod:`btc_pipeline.steps`. Kept out of the DAG files so that those stay thin and parse fast, and so
that the triggerer and the tests can import them. Connections are read here, inside the tasks,
never at DAG parse time.
"""
