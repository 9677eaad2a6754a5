"""Per-frame models of video jobs: a catalog (``configs/detectors.yaml``) and detectors."""
