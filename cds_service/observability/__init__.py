"""Observability: structured request logs, Prometheus metrics, FHIR conformance sampling."""
