"""``python -m devstack``: run the local stack (``up``, ``down``, ``status``) and Airflow's own CLI
against it (``airflow``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from devstack.config import MODES, StackError
from devstack.history import history_on_start, seed_history
from devstack.stack import Stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description="Run the local btc-pipeline stack.")
    parser.add_argument("command", choices=["up", "down", "status", "airflow"])
    parser.add_argument("--mode", choices=MODES, default="demo", help="demo: simulated exchange; live: real exchanges")
    parser.add_argument("--only", nargs="*", help="up: the service names to start (default: all)")
    parser.add_argument("--state-dir", type=Path, help="the stack's state directory (default: state/)")
    parser.add_argument(
        "args", nargs=argparse.REMAINDER, help="airflow: the arguments of Airflow's CLI, e.g. dags list"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        if args.command == "up":
            stack = Stack(args.mode, state_dir=args.state_dir)
            stack.up(args.only)
            seeded = seed_history(stack) if args.only is None and history_on_start(stack) else None
            print(stack.summary())
            if seeded:
                print(f"  History      {seeded}")
            return 0
        stack = Stack.running(args.mode, state_dir=args.state_dir)  # as it was started: its mode, ports, topics
        if args.command == "down":
            stopped = stack.down()
            print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
        elif args.command == "status":
            for name, state in stack.status().items():
                print(f"{name:24s} {state}")
        else:
            airflow_args = [a for a in args.args if a != "--"]
            if not airflow_args:
                parser.error("airflow: give Airflow's arguments, e.g. make airflow ARGS='dags list'")
            executable = str(stack.bin / "airflow")
            os.execve(executable, [executable, *airflow_args], {**os.environ, **stack.airflow_env()})  # noqa: S606 - our venv's airflow
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
