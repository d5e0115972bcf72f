"""adjudication's use cases: adjudicate submitted claims, apply payment results (the saga),
read provider totals and the plans in force.

HTTP-free: they take settings, a connection or engine and plain values, return plain data and
raise the errors of domain/errors.py. The API (api/) and the worker (worker.py) call them.
"""
