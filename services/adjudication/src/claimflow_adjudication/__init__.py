"""claimflow adjudication: benefit plans, exact net fees, provider totals, the payments saga."""
