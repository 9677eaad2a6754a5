"""Metrics and structured logs shared by the ingress and every deployment.

``metrics`` defines the service's Prometheus metrics (exported at Ray's metrics
endpoint inside a cluster, plain in-process values outside one); ``logging`` the JSON
log format and the request-id context variable. Neither imports ``ray.serve``.
"""
