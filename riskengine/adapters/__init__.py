"""Adapters: the engine's ways out to the world.

Stores (memory, SQLite, Redis), signal providers, the local outbox, the shared learner's
transport, API keys, the circuit breaker, logging and the HTTP client of the API.
"""
