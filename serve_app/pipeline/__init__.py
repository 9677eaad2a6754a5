"""The describe stage: media -> frames -> a vision-language model.

:class:`~serve_app.pipeline.describe.DescribePipeline` is the one orchestrator, over a
:class:`~serve_app.pipeline.backends.VisionBackend` per model: in process
(:class:`~serve_app.pipeline.backends.InProcessVision`) or Ray Serve handles
(``serve_app.deployments.handles.HandleVision``).
"""
