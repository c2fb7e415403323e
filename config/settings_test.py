"""The production settings, with throwaway keys so `pytest` runs without any environment."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-any-deployment-0123456789")
os.environ.setdefault("JWT_SIGNING_KEY", "test-only-jwt-signing-key-not-for-any-deployment-0123")
# The owner creates and migrates the test database; tests/conftest.py then switches to the app role.
os.environ.setdefault("DATABASE_ROLE", "owner")

from config.settings import *  # noqa: F403

WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # tests deliver to a receiver on 127.0.0.1
