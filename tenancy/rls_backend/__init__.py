"""Django's PostgreSQL backend, with each transaction's row-level security scope (``base.py``)."""
