"""PostgreSQL and Kafka adapters of the intake service."""
