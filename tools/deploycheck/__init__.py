"""``make compose-check``: the Docker deployment built and run end to end, on podman.

``docker-compose.yml`` and both Dockerfiles, unmodified, with Docker Compose v2 (built from the Go
module proxy) talking to ``podman system service``. Everything the check keeps is under
``state/deploycheck/`` (podman storage and configuration, images, the compose binary, logs, the
dashboard screenshot); it never touches the user's podman storage, ``/etc/containers`` or ``.env``.

Phases, in order (each prints what it found; the summary repeats the figures):

1. host: the Debian packages (podman, runc, netavark, mmdebstrap, chromium, ...) installed with
   apt-get where missing; Docker Compose built once and cached under ``state/deploycheck/bin``.
2. env: ``make env ENV_FILE=state/deploycheck/compose.env`` writes fresh secrets; compose refuses
   ``.env.example`` (empty secrets) naming the variable; every connection setting of the file
   names one of its services (:mod:`deploycheck.wiring`).
3. images: each image the compose file and the Dockerfiles name is pulled; where none can be, a
   stand-in is built (``standins/README.md`` says what each is and does not check; each is labelled
   in the output); then both project images from their Dockerfiles (``podman build --pull=never
   --format docker``) and the simulated exchange's.
4. podman API and the override (:mod:`deploycheck.compose`): only image swaps, the simulated
   exchange as a service, and the exchanges' URLs pointed at it.
5. a weak secret (``AIRFLOW_ADMIN_PASSWORD=admin``): ``up`` fails, check-secrets names it, nothing
   else starts.
6. ``compose up --wait``, with :mod:`deploycheck.healthloop` running the health checks (no systemd
   here); then every service healthy and the one-shot jobs exited 0.
7. Airflow's REST API: health, all DAGs parsed, 0 import errors, btc_ingest and btc_drain unpaused,
   a *scheduled* btc_ingest run succeeded.
8. the data path: messages produced to ``btc-metrics`` and committed by the drain's group, candles
   and ticks in MongoDB (FerretDB), the topics as topic-init made them (3 and 1 partitions).
9. ``/v1/prices/latest`` on the api container: a consensus under a minute old; the dashboard
   container's page shows that price in headless Chromium (screenshot saved).
10. ``docker compose exec airflow-apiserver btc-pipeline backfill --from 2h``: exit 0, then 117+
    minutes with candles in the window and ``btc-pipeline gaps`` finds no hole.
11. memory of every running container; ``compose down -v`` leaves no container, volume or network.

Breaking the deployment fails the check. Measured runs (2026-12-06, warm caches, each edit undone
afterwards); the cheap ones are also unit tests (``tests/unit/test_deploycheck.py``):

- A wrong service name in a connection (``AIRFLOW_CONN_BTC_MONGO``'s ``"host": "mongo"``): the
  wiring lint fails the env phase in 0.5 s, naming each service and variable. Run on past it
  (``DEPLOYCHECK_SKIP_WIRING=1``): every container still turns healthy, and the check fails 6 min 44 s
  in: no scheduled btc_ingest run succeeds. A wrong ``BTC_KAFKA_BOOTSTRAP`` is found only by the
  lint: the DAGs use the Airflow connection, so the data path fills regardless.
- A missing variable: an empty secret in the env file (``.env.example``) is refused by compose in
  the env phase, naming it; ``AIRFLOW__CORE__EXECUTION_API_SERVER_URL`` deleted from the file:
  every container healthy, then the check fails at 6 min 41 s, listing btc_ingest's runs
  (``produce_window: up_for_retry``, ``stream_ticks: failed``): the tasks cannot reach the
  api-server's Execution API.
- A Dockerfile step that does not install a package: ``pymongo`` left out of the dashboard's
  requirements fails the image build at its own import check (34 s, the build log's last lines in
  the message); the Kafka provider filtered out of ``./Dockerfile``'s install: the image builds,
  every container turns healthy, and the check fails 1 min 41 s in on the DAGs' import errors
  (``No module named 'airflow.providers.apache'``, one line per DAG file).
"""
