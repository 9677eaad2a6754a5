"""Per-frame models of video jobs: object detectors and the ``vlm`` frame captioner."""
