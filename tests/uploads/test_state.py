from serve_app.uploads.state import Manifest, UploadState


def test_manifest_round_trip():
    manifest = Manifest(upload_id="u", total_chunks=3, filename="a\\u202e.mp4", created_at=1.5)
    assert Manifest.from_json(manifest.to_json()) == manifest


def test_complete_means_every_chunk_arrived():
    state = UploadState("u", 3, "", (0, 2), 10, "receiving", 0.0)
    assert not state.complete
    assert UploadState("u", 2, "", (0, 1), 10, "analysing", 0.0).complete
