"""Model-free groundwork every app builds on: request context and the row-level security scope."""
