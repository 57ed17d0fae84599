"""The HTTP concerns of the server: request errors and their status codes, body and image limits,
request and response schemas, Prometheus metrics."""
