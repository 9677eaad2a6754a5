"""The hostile scenario: slow bodies, parallel large uploads and an Ingress kill.

``python scripts/hostile_test.py`` (see :mod:`~scripts.loadtest.hostile.cli`) starts
the CPU profile on loopback in its own Ray cluster and, next to the ordinary paid
traffic of :func:`scripts.loadtest.runner.run_load_test`, holds slow request bodies
open, sends rounds of parallel large uploads from one user and SIGKILLs the Ingress
replica mid-run. It passes when ``/healthz`` answered throughout (outside the window
Serve needs to restart the killed replica), memory stayed bounded, no file was left
behind and every user's credits reconcile.

Modules, one job each:

* :mod:`~scripts.loadtest.hostile.config`: what a run does, and its pass thresholds
* :mod:`~scripts.loadtest.hostile.slow_bodies`: connections that declare a large body
  and stall or trickle
* :mod:`~scripts.loadtest.hostile.uploads`: rounds of parallel large uploads, billed
* :mod:`~scripts.loadtest.hostile.probe`: the ``/healthz`` poller
* :mod:`~scripts.loadtest.hostile.processes`: the replicas' processes: RSS, the kill
* :mod:`~scripts.loadtest.hostile.orphans`: files left in the data directory
* :mod:`~scripts.loadtest.hostile.verdict`: the conditions and the markdown report
* :mod:`~scripts.loadtest.hostile.runner`: everything at once, then settle and check
* :mod:`~scripts.loadtest.hostile.cli`: the command line
"""
