"""Speech recognition: audio chunks in, timed transcript segments out.

:mod:`~serve_app.speech.base` holds the value objects and the engine contract;
:mod:`~serve_app.speech.backend` what orchestrators call (one video's transcript);
backends: pocketsphinx (offline, the embedded default) and transformers Whisper.
"""
