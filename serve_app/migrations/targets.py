"""The metadata migrations are written against (every domain's tables).

Import each domain's models module here so that its tables are registered on the
shared :class:`serve_app.storage.orm.Base`.
"""

from __future__ import annotations

import serve_app.accounts.models  # registers the accounts tables
import serve_app.jobs.store.tables  # noqa: F401  (registers the video job tables)
from serve_app.storage.orm import Base

target_metadata = Base.metadata
