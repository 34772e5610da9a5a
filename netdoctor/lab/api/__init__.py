"""The lab's Kubernetes API: object store, resource registry, HTTP server."""
