"""``btc-pipeline init-env`` (``make env``) and ``btc-pipeline check-secrets``: the Docker
deployment's ``.env`` with fresh secrets, and the check that refuses placeholders
(:mod:`btc_pipeline.deploy_secrets`). Neither ever prints a secret's value."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, TextIO

from btc_pipeline.cli.common import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE
from btc_pipeline.config import ConfigError, read_env_file

#: The subcommands of this module.
SECRET_COMMANDS = ("init-env", "check-secrets")


def add_secret_commands(commands: Any) -> None:
    """Add ``init-env`` and ``check-secrets`` to the CLI's subcommands."""
    init = commands.add_parser(
        "init-env",
        help="write .env for docker compose, with random passwords and secret keys (make env)",
        description="Write .env from .env.example with a random value for every password and secret key (URL-safe "
        "passwords, a 64-byte JWT secret, an API secret key, a Fernet key), readable by you only. An existing .env "
        "is never replaced without --force. The values are not printed: read them in the file.",
    )
    init.add_argument("--path", type=Path, default=Path(".env"), help="the file to write (default: .env)")
    init.add_argument(
        "--example",
        type=Path,
        default=Path(".env.example"),
        help="the file to copy (default: .env.example)",
    )
    init.add_argument(
        "--force",
        action="store_true",
        help="replace an existing file (volumes made with its passwords keep the old ones: see the README)",
    )
    check = commands.add_parser(
        "check-secrets",
        help="refuse placeholder or weak secrets (run by docker compose before anything starts)",
        description="Check the secrets of the Docker deployment: exit 0 when each is fit to use, 1 naming every one "
        "that is empty, a placeholder, well known, too short or malformed. Reads the environment, or --env-file.",
    )
    check.add_argument("--env-file", type=Path, help="check this .env file instead of the environment")


def run_secret_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run ``init-env`` or ``check-secrets``.

    Returns:
        The exit code: 0 done / every secret fit, 1 refused, 2 a file that cannot be used.
    """
    from btc_pipeline.deploy_secrets import SECRET_KEYS, EnvFileExistsError, secret_problems, write_env

    if args.command == "init-env":
        try:
            write_env(args.path, args.example, force=args.force)
        except EnvFileExistsError as exc:
            err.write(f"btc-pipeline init-env: error: {exc}\n")
            return EXIT_INCOMPLETE
        except (OSError, ValueError) as exc:
            err.write(f"btc-pipeline init-env: error: {exc}\n")
            return EXIT_USAGE
        out.write(
            f"wrote {args.path} with fresh secrets ({', '.join(SECRET_KEYS)}), readable by you only. "
            f"The Airflow UI's password is AIRFLOW_ADMIN_PASSWORD in {args.path}.\n"
        )
        return EXIT_OK
    if args.env_file is not None:
        if not args.env_file.is_file():
            err.write(f"btc-pipeline check-secrets: error: {args.env_file} not found: run `make env` to write one\n")
            return EXIT_USAGE
        try:
            env = read_env_file(args.env_file)
        except ConfigError as exc:
            err.write(f"btc-pipeline check-secrets: error: {exc}\n")
            return EXIT_USAGE
    else:
        env = dict(os.environ)
    problems = secret_problems(env)
    if problems:
        err.write(
            "btc-pipeline check-secrets: refusing to start the deployment with these secrets:\n"
            + "".join(f"  - {problem}\n" for problem in problems)
            + "Run `make env` (or `btc-pipeline init-env`) to write a .env with random ones, then start again.\n"
        )
        return EXIT_INCOMPLETE
    out.write(f"btc-pipeline check-secrets: {len(SECRET_KEYS)} secrets checked, each fit to use\n")
    return EXIT_OK
