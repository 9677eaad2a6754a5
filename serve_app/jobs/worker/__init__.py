"""Running jobs: the worker loop, the executor, frame decoding and the per-frame models."""
