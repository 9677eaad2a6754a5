"""Load test of serve_app: mixed traffic for a bounded time, then credits and jobs reconciled.

Usage (from the repository root):
    .venv/bin/python scripts/load_test.py [--duration 180] [--concurrency 8] [--json out.json]
    .venv/bin/python scripts/load_test.py --url http://127.0.0.1:8000 --token sa_...

By default it starts the CPU profile (tiny model) on 127.0.0.1 in its own Ray cluster
(own RAY_TMPDIR) and scratch directory, with its own users, and shuts it down at the
end, also on errors, Ctrl-C and SIGTERM. See :mod:`scripts.loadtest` and ``--help``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make ``scripts.loadtest`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one torch thread per process, as in tests

from scripts.loadtest.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
