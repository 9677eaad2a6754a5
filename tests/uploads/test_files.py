import threading

from serve_app.uploads import files


def test_create_exclusive_has_one_winner(tmp_path):
    target = tmp_path / "manifest.json"
    results: list[bool] = []

    def create(i: int) -> None:
        results.append(files.create_exclusive(target, f"writer {i}".encode()))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    assert target.read_bytes().startswith(b"writer ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


def test_json_round_trip_and_replace(tmp_path):
    path = tmp_path / "r.json"
    files.write_json(path, {"a": "\u202e"})
    assert b"\\u202e" in path.read_bytes()  # stored escaped
    files.write_json(path, {"a": 2})
    assert files.read_json(path) == {"a": 2}
    assert not files.write_json(path, {"a": 3}, exclusive=True)
    assert files.read_json(path) == {"a": 2}


def test_remove_tree_goes_through_the_trash(tmp_path):
    victim = tmp_path / "up"
    victim.mkdir()
    (victim / "chunk-000000").write_bytes(b"x")
    trash = tmp_path / ".trash"
    assert files.remove_tree(victim, trash)
    assert not victim.exists() and list(trash.iterdir()) == []
    assert not files.remove_tree(victim, trash)


def test_sha256_and_mtime(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert files.sha256_file(path).startswith("ba7816bf")
    assert files.mtime(path) is not None and files.mtime(tmp_path / "nope") is None
