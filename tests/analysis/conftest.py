from tests.api.conftest import tiny_engine  # noqa: F401  (the tiny model, in process)
