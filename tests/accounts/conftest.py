from tests.support.databases import (  # noqa: F401
    accounts,
    database,
    postgres_database,
    postgres_url,
    sqlite_template,
)
