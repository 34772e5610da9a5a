"""The lab: an emulated Kubernetes API over a real Linux pod network.

Used by netdoctor's own tests, its demo and its benchmarks. The suite never imports
this package: it sees the lab only through the Kubernetes API, as any cluster.
"""
