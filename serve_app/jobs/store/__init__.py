"""Durable job state: the ``video_jobs`` table, its records, the JobStore and billing."""
