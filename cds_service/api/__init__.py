"""The HTTP API: discovery, hooks, feedback, the timeline page, health, OpenAPI, request validation."""
