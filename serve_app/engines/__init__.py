"""Model backends behind one async interface (:mod:`serve_app.engines.base`)."""
