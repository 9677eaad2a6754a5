"""serve_app: image and video understanding on Ray Serve."""

__version__ = "0.1.0"
