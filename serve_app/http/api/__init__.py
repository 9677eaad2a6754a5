"""The HTTP layer: a FastAPI app factory, routers, schemas and error mapping.

Nothing here imports Ray; the app runs under Ray Serve's ingress or plain uvicorn.
"""
