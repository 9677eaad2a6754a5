"""Media handling: type detection, validation, probing, decoding, sampling, resizing.

Nothing here imports Ray; everything is plain, synchronous and testable on its own.
"""
