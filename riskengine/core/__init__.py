"""The decision core: pure functions and values, no I/O.

One login in, one outcome out (``decide``): features assembled once, rules, model score,
policy, shadow, the profile update and the lesson. Rules, policy, pseudonyms, the learning
caps and the wire contract live here too. Nothing here touches a store, a socket, a file,
a lock, a thread, a log or the wall clock; the import contracts in ``pyproject.toml`` check
that no adapter, service, API or tool module is imported.
"""
