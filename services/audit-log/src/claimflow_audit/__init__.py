"""claimflow audit-log: an append-only, hash-chained trail of every claim event and PHI read."""
