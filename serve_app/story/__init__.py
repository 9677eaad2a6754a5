"""The Story API's domain: media → observations → an English story → a translation.

``service`` holds the use case, ``prompts`` every prompt, ``languages`` the target
languages, ``protocol`` the :class:`StoryPipeline` the HTTP layer talks to (in-process
here, Ray Serve handles in ``serve_app.deployments``).
"""
