"""The Story API's domain: media → observations → an English story → a translation.

``service`` holds the use case, ``prompts`` every prompt, ``languages`` the target
languages, ``pipeline`` the :class:`StoryPipeline` the HTTP layer talks to (over
in-process engines or Ray Serve handles, see ``serve_app.engines.backend``).
"""
