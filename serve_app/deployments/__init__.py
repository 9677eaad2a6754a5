"""Ray Serve deployments: thin wrappers over the domain code.

The classes are plain (tests construct them directly); :mod:`.options` turns them into
deployments with the embedded CPU profile's defaults (fractional CPUs, small
concurrency), which ``serve_config.yaml`` overrides per deployment for GPU clusters.
:mod:`.handles` is the only code that calls deployment handles. Only this package, the
app builder and the CLI import ``ray``.
"""
