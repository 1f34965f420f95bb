"""Serving: one inference handler, an HTTP server with SageMaker's contract, batch inference."""
