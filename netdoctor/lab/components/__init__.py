"""The cluster components the lab implements itself (registered with ``@builtin``).

Import a module here to register its image pattern, e.g.
``import netdoctor.lab.components.flannel``.
"""
