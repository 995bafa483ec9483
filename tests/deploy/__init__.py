"""Production settings, health and readiness, structured logs (issue #7)."""
