"""Account commands for ``serve-app``: users, passwords, credits and API tokens.

The first administrator::

    serve-app create-user admin --admin                 # prompts for a password
    echo "$PASSWORD" | serve-app create-user admin --admin --password-stdin

Every command uses the service's settings (``SERVE_APP_DATA_DIR``,
``SERVE_APP_DATABASE_URL`` / ``DATABASE_URL``, ...) and migrates the database first.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from serve_app.accounts.passwords import Passwords
from serve_app.accounts.settings import AccountSettings
from serve_app.accounts.tokens import ApiTokens
from serve_app.accounts.users import (
    FIRST_ADMIN_HINT,
    count_admins,
    create_user,
    find_user,
    grant_credits,
    list_users,
    reset_password,
)
from serve_app.errors import ServeAppError
from serve_app.storage.db import Database, database_url_for, migrate

Command = Callable[[argparse.Namespace, Database, AccountSettings], int]


def _settings(ns: argparse.Namespace) -> tuple[str, AccountSettings]:
    from serve_app.config import Settings

    overrides: dict[str, object] = {}
    if ns.data_dir:
        overrides["data_dir"] = ns.data_dir
    if ns.database_url:
        overrides["database_url"] = ns.database_url
    settings = Settings(**overrides)  # type: ignore[arg-type]
    return database_url_for(settings.database_url, settings.data_dir), settings.accounts


@contextmanager
def _database(url: str) -> Iterator[Database]:
    database = Database(url)
    try:
        migrate(database)
        yield database
    finally:
        database.dispose()


def read_password(from_stdin: bool, stdin: TextIO | None = None) -> str:
    """One line from stdin, or a double prompt on a terminal."""
    stdin = stdin or sys.stdin
    if from_stdin:
        return stdin.readline().rstrip("\r\n")
    if not stdin.isatty():
        raise SystemExit("error: no terminal to prompt on; pass --password-stdin")
    first = getpass.getpass("password: ")
    if getpass.getpass("repeat password: ") != first:
        raise SystemExit("error: the passwords differ")
    return first


def _create_user(ns: argparse.Namespace, db: Database, settings: AccountSettings) -> int:
    password = read_password(ns.password_stdin)
    user = create_user(
        db, Passwords(settings), ns.name, password, is_admin=ns.admin, credits=ns.credits
    )
    role = "administrator" if user.is_admin else "user"
    print(f"created {role} {user.username!r} (id {user.id}, balance {user.balance})")
    if not user.is_admin and count_admins(db) == 0:
        print(FIRST_ADMIN_HINT)
    return 0


def _reset_password(ns: argparse.Namespace, db: Database, settings: AccountSettings) -> int:
    password = read_password(ns.password_stdin)
    ended = reset_password(db, Passwords(settings), ns.name, password)
    print(f"password of {ns.name!r} changed; {ended} login session(s) ended")
    return 0


def _grant_credits(ns: argparse.Namespace, db: Database, settings: AccountSettings) -> int:
    user = grant_credits(db, ns.name, ns.amount, ns.reason)
    print(f"{user.username!r} now has {user.balance} credits")
    return 0


def _create_token(ns: argparse.Namespace, db: Database, settings: AccountSettings) -> int:
    user = find_user(db, ns.name)
    created = ApiTokens(db, settings.token_prefix).create(user.id, ns.token_name)
    print(created.token)
    print(
        f"API token {created.info.name!r} (id {created.info.id}) for {user.username!r}; "
        "shown only now — use it as 'Authorization: Bearer <token>'",
        file=sys.stderr,
    )
    return 0


def _list_users(ns: argparse.Namespace, db: Database, settings: AccountSettings) -> int:
    users = list_users(db)
    for user in users:
        role = "admin" if user.is_admin else "user"
        print(f"{user.id}\t{user.username}\t{role}\t{user.balance}")
    if not any(u.is_admin for u in users):
        print(FIRST_ADMIN_HINT, file=sys.stderr)
    return 0


def _runner(command: Command) -> Callable[[argparse.Namespace], int]:
    def run(ns: argparse.Namespace) -> int:
        url, settings = _settings(ns)
        try:
            with _database(url) as db:
                return command(ns, db, settings)
        except ServeAppError as exc:
            print(f"error: {exc.detail}", file=sys.stderr)
            return 1

    return run


def register_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the account commands (create-user, reset-password, grant-credits, ...)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default=None, help="default: SERVE_APP_DATA_DIR or .data")
    common.add_argument("--database-url", default=None, help="default: SQLite in the data dir")

    def add(name: str, command: Command, help_text: str) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(name, help=help_text, parents=[common], epilog=__doc__)
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        parser.set_defaults(func=_runner(command))
        return parser

    create = add("create-user", _create_user, "create a user or an administrator")
    create.add_argument("name")
    create.add_argument("--admin", action="store_true", help="an administrator (free analyses)")
    create.add_argument("--credits", type=int, default=0, help="opening balance")
    create.add_argument("--password-stdin", action="store_true", help="read it from stdin")

    reset = add("reset-password", _reset_password, "set a new password (ends login sessions)")
    reset.add_argument("name")
    reset.add_argument("--password-stdin", action="store_true", help="read it from stdin")

    grant = add("grant-credits", _grant_credits, "add (or, negative, remove) credits")
    grant.add_argument("name")
    grant.add_argument("amount", type=int)
    grant.add_argument("--reason", default="granted on the command line")

    token = add("create-token", _create_token, "create an API token (printed once)")
    token.add_argument("name", help="the user")
    token.add_argument("--token-name", default="cli", help="a label for the token")

    add("list-users", _list_users, "list users, roles and balances")
