"""Long-video summaries: chunked captions with true timestamps, chapters, a summary.

A durable job (the ``video_jobs`` machinery of :mod:`serve_app.jobs`, kind
``summary``) cuts a clip into chunks, captions each chunk from its frames on the
vision model's replicas, stores every chunk as it completes, and reduces the captions
to chapters and a summary with the text model. Exports: JSON, SRT and WebVTT.
"""
