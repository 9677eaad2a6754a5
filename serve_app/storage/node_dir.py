"""This node's own data directory.

``data_dir`` is node-local: spooled uploads, the tiny model, the local blob store and
the default SQLite database live there, and nothing another node needs is read from it
(media cross nodes through Ray's object store, job inputs through the blob store). A
replica takes the directory from the settings it was bound with, unless its node's
environment names another in ``SERVE_APP_NODE_DATA_DIR`` (set it for ``ray start`` or in
a pod spec, where the path the driver resolved does not suit every node).
"""

from __future__ import annotations

import os
from pathlib import Path

NODE_DATA_DIR_ENV = "SERVE_APP_NODE_DATA_DIR"


def node_data_dir(configured: Path) -> Path:
    """``SERVE_APP_NODE_DATA_DIR`` (absolute) where this process has it, else ``configured``."""
    override = os.environ.get(NODE_DATA_DIR_ENV, "").strip()
    return Path(override).expanduser().resolve() if override else Path(configured)
