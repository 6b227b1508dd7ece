"""The development stack `make run` starts: one supervisor (``python -m devstack.launcher``) running the
Temporal dev server, the worker and the gateway as child processes. Production runs the parts on their own."""
