import pytest

from serve_app.errors import InvalidRequest
from serve_app.uploads.names import (
    clean_filename,
    escape_filename,
    upload_key,
    user_key,
    validate_upload_id,
)


@pytest.mark.parametrize("good", ["a", "A-b_9", "x" * 64])
def test_valid_upload_ids(good):
    assert validate_upload_id(good) == good


@pytest.mark.parametrize(
    "bad", ["", "../x", "/etc/passwd", "a\0b", "x" * 65, "a\u202eb", "a b", ".", "a\n"]
)
def test_invalid_upload_ids_are_refused_without_echo(bad):
    with pytest.raises(InvalidRequest) as info:
        validate_upload_id(bad)
    assert bad not in info.value.detail or bad == ""


def test_keys_are_hashes_per_user():
    assert upload_key(1, "same") != upload_key(2, "same")
    assert upload_key(1, "a") != upload_key(1, "b")
    for key in (upload_key(1, "../x"), user_key(1)):
        assert key.isalnum() and key == key.lower()


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("clip.mp4", "clip.mp4"),
        ("clip\u202e4pm.jpg", "clip\\u202e4pm.jpg"),
        ("a\\u202e", "a\\\\u202e"),  # a literal backslash cannot fake an escape
        ("tab\there", "tab\\u0009here"),
        ("émoji 🎬.mp4", "émoji 🎬.mp4"),
    ],
)
def test_escape_filename(raw, shown):
    assert escape_filename(raw) == shown


def test_clean_filename():
    assert clean_filename(None) == ""
    assert clean_filename("../../etc/passwd") == "../../etc/passwd"  # metadata only
    with pytest.raises(InvalidRequest, match="NUL"):
        clean_filename("a\0.mp4")
    with pytest.raises(InvalidRequest, match="longer"):
        clean_filename("x" * 256)
