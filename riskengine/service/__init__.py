"""The shell around the core: load, decide, record, teach, log.

``scorer.Engine`` owns the breaker, the failover answer and the outbox; ``build`` assembles
it from ``settings``; ``shadow`` counts a candidate ruleset's decisions; ``rights`` shapes
a user's export.
"""
