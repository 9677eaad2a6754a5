"""The HTTP-facing use case of jobs: signed uploads, submit, status, cancel, listing."""
