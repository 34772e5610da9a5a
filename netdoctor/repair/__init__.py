"""The remediation engine: hooks, the policy that allows them, and the ordered run.

Concrete hooks live in the top-level ``remediation/`` folder; this package only
knows how to choose, order, cap, apply and verify them.
"""
