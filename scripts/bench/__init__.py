"""Benchmarks of the Serve graph on CPU: ``python -m scripts.bench --out BENCHMARKS.md``.

Cases (each ratio against a baseline measured in the same run):

- ``overhead``: ``POST /api/analyze`` through Ray Serve vs the same engine in-process;
- ``batching``: VisionLanguageModel with ``max_batch_size`` 1 vs 8 at concurrency 16;
- ``scaling``: FrameExtractor with 1 vs 2 replicas;
- ``memory``: memory of the proxy and replicas during chunked uploads of 1-, 10- and
  4-minute 1080p videos and their analysis (the 10-minute growth vs the 1-minute one).

Run on their own: ``python -m scripts.bench.long_video`` (long-video summaries, issue
17: a 60-minute 720p video's summary vs its decode-only time, peak memory of 10 vs 60
minutes, 1 vs 2 VisionLanguageModel replicas).
"""
