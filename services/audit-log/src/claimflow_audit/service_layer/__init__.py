"""The audit log's use cases: record consumed events into the chain, checkpoint it, verify it
(on request and on a schedule), read a claim's timeline, export and check archives.

HTTP-free: they take settings, an engine and plain values, return plain data and raise the
errors of domain/errors.py. The API (api/), the worker (worker.py) and the CLI call them.
"""
