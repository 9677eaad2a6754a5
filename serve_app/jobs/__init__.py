"""Batch video inference jobs: model, store, runner logic, input fetching, callbacks."""
