"""Issue 15's closing load test: slow bodies, parallel large uploads, an Ingress kill.

Usage (from the repository root):
    .venv/bin/python scripts/hostile_test.py [--duration 150] [--json out.json]

Starts the CPU profile (tiny model) on 127.0.0.1 in its own Ray cluster (own
RAY_TMPDIR) and scratch directory and stops it at the end, also on errors, Ctrl-C and
SIGTERM. See :mod:`scripts.loadtest.hostile` and ``--help``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make ``scripts.loadtest`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one torch thread per process, as in tests

from scripts.loadtest.hostile.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
