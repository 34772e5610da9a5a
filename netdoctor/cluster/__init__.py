"""Cluster access layer: API client, cluster profile, probe pods and exec.

Everything here is async (kr8s.asyncio) and bounded by our own deadlines; pytest reaches it
through the session fixtures in ``fixtures/``, which run coroutines on one event loop.
"""
