"""The validate tier: end-to-end paths, DNS, components and node facts (``pytest -m validate``)."""
