"""PostgreSQL: the audit table, the chain store, and the application role's rights."""
