import logging
import stat

from serve_app.accounts.context import open_accounts
from serve_app.accounts.users import create_user
from serve_app.config import Settings
from tests.support.databases import FAST_SETTINGS


def test_open_accounts_on_the_embedded_default(tmp_path, caplog):
    settings = Settings(data_dir=tmp_path, database_url=None, accounts=FAST_SETTINGS)
    with caplog.at_level(logging.WARNING):
        accounts = open_accounts(settings)
    try:
        assert accounts.database.is_sqlite
        assert (tmp_path / "serve_app.db").exists()
        assert stat.S_IMODE((tmp_path / "session_secret").stat().st_mode) == 0o600
        assert "serve-app create-user NAME --admin" in caplog.text
        create_user(accounts.database, accounts.passwords, "root", "password123", is_admin=True)
    finally:
        accounts.close()
    again = open_accounts(settings)  # idempotent restart, same signing key
    try:
        assert again.signer.sign("s") == accounts.signer.sign("s")
    finally:
        again.close()


def test_configured_secret_and_postgres(tmp_path, postgres_url, caplog):
    from tests.support.databases import drop_schema, new_schema

    schema = new_schema(postgres_url)
    url = postgres_url + f"?options=-csearch_path%3D{schema}"
    secret = "s" * 40
    settings = Settings(
        data_dir=tmp_path,
        database_url=url,
        accounts=FAST_SETTINGS.model_dump() | {"session_secret": secret},
    )
    try:
        accounts = open_accounts(settings)
        try:
            assert not accounts.database.is_sqlite
            assert not (tmp_path / "session_secret").exists()
        finally:
            accounts.close()
    finally:
        drop_schema(postgres_url, schema)


def test_short_configured_secrets_are_refused():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings(accounts={"session_secret": "too short"})
