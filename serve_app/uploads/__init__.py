"""Uploads: chunked uploads to disk, admin server paths, and the upload client."""
