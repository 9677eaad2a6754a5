"""The ``POST /api/analyze`` use case: validate once, charge, describe.

``submit`` takes the request however the media arrives (one file, chunks, an admin's
``file_path``), ``params`` checks the parameters once, ``describe`` probes the media once
before anything is charged and runs the model, ``charged`` wraps that in a charge.
"""
