"""``python -m simexchange --port 8090``: serve the simulated exchange."""

from simexchange.server import main

main()
