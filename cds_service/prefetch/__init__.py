"""Prefetch: templates filled from the request, and the allow-listed, time-budgeted FHIR-server client."""
