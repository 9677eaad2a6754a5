"""The web UI: server-rendered pages and a little plain JavaScript over the JSON API.

Everything lives under ``/ui/``; the pages call the same endpoints API clients use
(``/api/analyze``, ``/analyze/``, ``/videoinfer/``, ...), authenticated by the login
session cookie plus the ``X-CSRF-Token`` header. Mounted by
:func:`serve_app.http.web.install.install_web`.
"""
