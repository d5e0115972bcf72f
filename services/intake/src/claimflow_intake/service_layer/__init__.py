"""intake's use cases: accept, read and list claims; apply the status events of the pipeline.

HTTP-free: they take settings, an engine or a connection and plain values, return plain
data and raise the errors of domain/errors.py. The API (api/) and the worker (worker.py)
are thin callers of these.
"""
