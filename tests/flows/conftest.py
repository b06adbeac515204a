"""Flow tests run against the local stack (tests/support/local_stack.py, via tests/conftest.py)."""
