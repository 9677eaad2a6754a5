"""Story tests share the in-process tiny engine of the API tests."""

from tests.api.conftest import tiny_engine  # noqa: F401  (fixture)
