"""HTTP API of adjudication: top providers, provider totals, plans."""
