"""The analysis use case and the ``Pipeline`` protocol the HTTP layer talks to.

In production a pipeline is backed by Ray Serve deployment handles
(``serve_app.deployments.serve_pipeline``); in tests and in-process use by
:class:`~serve_app.pipeline.describe.DescribePipeline`.
"""
