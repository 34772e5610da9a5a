"""Reusable probes: what runs inside probe pods, and how its output is read."""
