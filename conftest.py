"""The checkout's conftest: ``pytest -m diagnose`` here runs ``tests/`` with the netdoctor plugin.

The plugin comes from the installed package's entry point (an editable install, made by
``scripts/bootstrap``, maps ``netdoctor.suite.tests``, ``.fixtures`` and ``.remediation`` onto
this checkout's folders) and loads the fixtures itself, so a run from the checkout and a run
of the installed package (``netdoctor diagnose``) load the same modules, once. Without the
entry point (not installed) the plugin is loaded from here.
"""

from __future__ import annotations

from importlib.metadata import entry_points

_installed = any(ep.name == "netdoctor" for ep in entry_points(group="pytest11"))
pytest_plugins = [] if _installed else ["netdoctor.plugin"]
