"""The checks users run: ``diagnose/`` (the six signals) and ``validate/`` (end to end)."""
