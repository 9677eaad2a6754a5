"""A bounded load test of the running service: mixed traffic, then a credit audit.

``python scripts/load_test.py`` (see :mod:`scripts.loadtest.cli`) starts the CPU
profile on loopback, or targets a running service with ``--url``. The core is
:func:`scripts.loadtest.runner.run_load_test`, which tests call against their own
Ray Serve cluster.

Modules, one job each:

* :mod:`~scripts.loadtest.config`: what a run does (duration, concurrency, budget, mix)
* :mod:`~scripts.loadtest.media`: the JPEG, PNG and MP4 it sends
* :mod:`~scripts.loadtest.stats`: per-kind counts and latencies
* :mod:`~scripts.loadtest.client`: one HTTP call, 503 retries honouring ``Retry-After``
* :mod:`~scripts.loadtest.ledger`: the accounts used and the charges the client saw
* :mod:`~scripts.loadtest.scenarios`: analyses, chunked uploads, stories, jobs, polls
* :mod:`~scripts.loadtest.jobs`: polling submitted jobs to a final state
* :mod:`~scripts.loadtest.reconcile`: balances vs charges vs the ledger, stuck work
* :mod:`~scripts.loadtest.runner`: workers, deadline, drain, the report
* :mod:`~scripts.loadtest.report`: text, markdown and JSON output
* :mod:`~scripts.loadtest.service`: a local service on the tiny model (own Ray cluster)
* :mod:`~scripts.loadtest.cli`: the command line
* :mod:`~scripts.loadtest.hostile`: issue 15's hostile run (slow bodies, parallel large
  uploads, an Ingress kill) next to this traffic (``scripts/hostile_test.py``)
"""
