"""The accounts errors in the single status table, with their headers."""

import pytest

from serve_app import errors
from serve_app.http.errors import error_response


@pytest.mark.parametrize(
    ("exc", "status", "headers"),
    [
        (errors.AuthenticationFailed("x"), 401, {"www-authenticate": "Bearer"}),
        (errors.InsufficientCredits("x"), 402, {}),
        (errors.PermissionDenied("x"), 403, {}),
        (errors.NotFound("x"), 404, {}),
        (errors.Conflict("x"), 409, {}),
        (errors.Gone("x"), 410, {}),
        (errors.IdempotencyKeyReused("x"), 422, {}),
        (errors.RateLimited("x", retry_after_s=7), 429, {"retry-after": "7"}),
        (errors.RateLimited("x", retry_after_s=0), 429, {"retry-after": "1"}),
    ],
)
def test_status_and_headers(exc, status, headers):
    response = error_response(exc)
    assert response.status_code == status
    assert response.body == b'{"detail":"x"}'
    for name, value in headers.items():
        assert response.headers[name] == value
