"""intake's HTTP API."""
