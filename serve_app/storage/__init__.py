"""Where bytes live: the upload spool (and, later, the database and blob store)."""
