"""kafka-python adapters; every blocking call runs on a thread, never on the event loop."""
