# syntax=docker/dockerfile:1
# The project's Airflow image, used by every Airflow service in docker-compose.yml (build context:
# the repository root). The base is pinned to the apache-airflow version that uv.lock locks
# (tests/test_compose.py checks that they agree). Dependencies are baked in at build time from the
# lock, never pip-installed when a container starts.
FROM apache/airflow:3.3.2-python3.11

# uv only turns uv.lock into a requirements list; pip installs it into the airflow user's
# environment (~/.local, the base image's virtualenv), as the base image's docs prescribe.
ARG UV_VERSION=0.13.9
USER airflow
WORKDIR /opt/airflow

# Dependencies first, so that this layer is rebuilt only when the lock changes.
# apache-airflow is pinned to the base image's own version ($AIRFLOW_VERSION, set by the base):
# a lock that wants another Airflow fails the build here instead of replacing the image's Airflow.
COPY --chown=airflow:0 pyproject.toml uv.lock README.md /tmp/btc-pipeline/
RUN pip install --no-cache-dir "uv==${UV_VERSION}" \
    && cd /tmp/btc-pipeline \
    && uv export --frozen --no-dev --no-emit-project --no-hashes --no-header --no-annotate \
        -o /tmp/requirements.txt \
    && pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The btc_pipeline package (plugins/btc_pipeline, built with hatchling) and its `btc-pipeline`
# console script, so that the triggerer and task processes import it without relying on sys.path.
COPY --chown=airflow:0 plugins/ /tmp/btc-pipeline/plugins/
RUN pip install --no-cache-dir --no-deps /tmp/btc-pipeline \
    && rm -rf /tmp/btc-pipeline \
    && python -c "import btc_pipeline.config" \
    && command -v btc-pipeline

COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
# Airflow's plugin loader executes every .py file under the plugins folder as a top-level module
# (config, store, ...). The package is installed above; keep the loader out of it.
RUN grep -qx 'btc_pipeline/' /opt/airflow/plugins/.airflowignore 2>/dev/null \
    || echo 'btc_pipeline/' >> /opt/airflow/plugins/.airflowignore
