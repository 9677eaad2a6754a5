"""Batch video inference jobs: ``submit`` (HTTP use case), ``worker`` (runs jobs), ``store``.

Shared by all three: :mod:`.spec` (request bodies), :mod:`.rules` (limits and
prices), :mod:`.settings`, :mod:`.context`, :mod:`.status`, :mod:`.callbacks` and
:mod:`.net` (SSRF-safe outbound HTTP). ``submit`` and ``worker`` never import each other.
"""
