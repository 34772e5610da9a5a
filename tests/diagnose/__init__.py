"""The diagnose tier: the six signal checks (``pytest -m diagnose``)."""
