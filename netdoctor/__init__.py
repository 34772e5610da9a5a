"""netdoctor: diagnose, validate and repair a Kubernetes pod network."""

__version__ = "0.1.0"
