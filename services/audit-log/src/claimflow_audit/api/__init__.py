"""The /v1/audit HTTP API."""
