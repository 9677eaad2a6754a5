from tests.support.databases import (  # noqa: F401
    database,
    postgres_database,
    postgres_url,
    sqlite_template,
)
