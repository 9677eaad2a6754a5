"""The HTTP layer: the FastAPI app, its typed dependencies, JSON routes and web pages.

``app.create_app`` builds the app; ``deps`` holds every typed dependency alias the
routes use; ``api/`` has the JSON routes and their schemas, ``web/`` the server-rendered
pages. Both sides use the shared modules here (``auth``, ``context``, ``navigation``,
``capabilities``) and never each other.
"""
