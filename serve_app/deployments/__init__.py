"""Ray Serve deployments: thin wrappers over the domain code.

Only this package and :mod:`serve_app.app` import ``ray.serve``. Deployment defaults
in the decorators are the embedded CPU profile's (fractional CPUs, small
concurrency); ``serve_config.yaml`` overrides them per deployment for GPU clusters.
"""
