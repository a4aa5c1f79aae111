#!/usr/bin/python3
"""``mongosh`` in the FerretDB stand-in for MongoDB: only what docker-compose.yml's health check runs,
``mongosh --quiet --eval "db.adminCommand('ping')"``, answered with a real ``ping`` over the wire
protocol (PyMongo). It runs no JavaScript: any other expression or flag exits 2 and says so (see
``tools/deploycheck/standins/README.md``).
"""

from __future__ import annotations

import re
import sys

#: The expressions this stand-in can answer, each meaning "ping the admin database".
PING = re.compile(
    r"""^\s*db\.(adminCommand|runCommand)\(\s*(['"]ping['"]|\{\s*['"]?ping['"]?\s*:\s*1\s*\})\s*\)\s*;?\s*$"""
)


def parse(argv: list[str]) -> tuple[str, bool]:
    """``(expression, quiet)`` from the command line.

    Raises:
        ValueError: A flag or expression this stand-in does not implement.
    """
    expression, quiet = None, False
    items = iter(argv)
    for item in items:
        if item == "--quiet":
            quiet = True
        elif item == "--eval":
            expression = next(items, None)
        else:
            raise ValueError(f"{item!r} is not implemented by the mongosh stand-in")
    if expression is None or not PING.match(expression):
        raise ValueError(f"only --eval \"db.adminCommand('ping')\" is implemented, not {expression!r}")
    return expression, quiet


def main(argv: list[str]) -> int:
    try:
        _, quiet = parse(argv)
    except ValueError as exc:
        print(f"mongosh (stand-in, tools/deploycheck/standins/README.md): {exc}", file=sys.stderr)
        return 2
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    client: MongoClient[dict[str, object]] = MongoClient("127.0.0.1", 27017, serverSelectionTimeoutMS=5000)
    try:
        answer = client.admin.command("ping")
    except PyMongoError as exc:
        print(f"MongoServerSelectionError: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    if not quiet:
        print("Current Mongosh Log ID: stand-in")
    print("{ ok: 1 }" if answer.get("ok") == 1 else answer)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
