import argparse
import io
from pathlib import Path

import pytest

import serve_app
from serve_app.accounts.passwords import Passwords
from serve_app.accounts.users import authenticate_password, find_user
from serve_app.cli.accounts import read_password, register_commands
from serve_app.storage.db import Database, database_url_for
from tests.support.databases import FAST_SETTINGS


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SERVE_APP_ACCOUNTS__ARGON2_TIME_COST", "1")
    monkeypatch.setenv("SERVE_APP_ACCOUNTS__ARGON2_MEMORY_KIB", "8")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SERVE_APP_DATABASE_URL", raising=False)
    parser = argparse.ArgumentParser(prog="serve-app")
    register_commands(parser.add_subparsers(dest="command", required=True))

    def run(*argv, stdin=""):
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        ns = parser.parse_args([*argv, "--data-dir", str(tmp_path)])
        code = ns.func(ns)
        out = capsys.readouterr()
        return code, out.out, out.err

    run.database = lambda: Database(database_url_for(None, tmp_path))
    return run


def test_first_admin_users_credits_and_tokens(cli):
    code, out, _ = cli("list-users")
    assert code == 0 and out == ""
    code, out, _ = cli(
        "create-user", "alice", "--credits", "5", "--password-stdin", stdin="pw-alice-1\n"
    )
    assert code == 0 and "created user 'alice'" in out and "--admin" in out  # first-admin hint
    code, out, _ = cli("create-user", "root", "--admin", "--password-stdin", stdin="pw-root-12\n")
    assert code == 0 and "created administrator 'root'" in out
    code, out, _ = cli("grant-credits", "alice", "20")
    assert code == 0 and "25 credits" in out
    code, out, err = cli("create-token", "alice", "--token-name", "ci")
    assert code == 0 and out.strip().startswith("sa_") and "shown only now" in err
    code, out, _ = cli("reset-password", "alice", "--password-stdin", stdin="new-password\n")
    assert code == 0
    database = cli.database()
    try:
        alice = find_user(database, "alice")
        assert alice.balance == 25
        passwords = Passwords(FAST_SETTINGS)
        assert authenticate_password(database, passwords, "alice", "new-password") is not None
    finally:
        database.dispose()
    code, out, _ = cli("list-users")
    assert "root\tadmin" in out and "alice\tuser\t25" in out


def test_errors_are_reported_not_raised(cli):
    cli("create-user", "alice", "--password-stdin", stdin="pw-alice-1\n")
    code, _, err = cli("create-user", "alice", "--password-stdin", stdin="pw-alice-1\n")
    assert code == 1 and "already exists" in err
    code, _, err = cli("grant-credits", "nobody", "5")
    assert code == 1 and "no user named" in err
    code, _, err = cli("create-user", "bob", "--password-stdin", stdin="short\n")
    assert code == 1 and "at least 8" in err


def test_password_prompt_needs_a_terminal():
    with pytest.raises(SystemExit, match="--password-stdin"):
        read_password(False, io.StringIO(""))
    assert read_password(True, io.StringIO("secret words\r\n")) == "secret words"


#: The serving and media stack: account commands must not import any of it.
SERVING_STACK = ("ray", "torch", "transformers", "vllm", "numpy", "av", "cv2", "PIL", "fastapi")


def test_account_commands_import_only_what_they_use(tmp_path):
    """create-user, create-token and list-users load config, accounts and migrations only."""
    import json
    import os
    import subprocess
    import sys

    script = f"""
import io, json, sys
from serve_app.cli import main
sys.stdin = io.StringIO("pw-admin-123\\n")
codes = [
    main(["create-user", "admin", "--admin", "--password-stdin", "--data-dir", {str(tmp_path)!r}]),
    main(["create-token", "admin", "--data-dir", {str(tmp_path)!r}]),
    main(["list-users", "--data-dir", {str(tmp_path)!r}]),
]
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({SERVING_STACK!r}))
print(json.dumps({{"codes": codes, "loaded": loaded}}))
"""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "SERVE_APP_DATABASE_URL"}
    }
    # The checkout under test first (as for this process), whatever is installed.
    root = str(Path(serve_app.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env |= {
        "SERVE_APP_ACCOUNTS__ARGON2_TIME_COST": "1",
        "SERVE_APP_ACCOUNTS__ARGON2_MEMORY_KIB": "8",
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout.splitlines()[-1])
    assert result == {"codes": [0, 0, 0], "loaded": []}
