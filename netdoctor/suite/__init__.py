"""The checks, their fixtures and the remediation hooks, as the installed package ships them.

In a checkout they live at the repository's top level (``tests/``, ``fixtures/``,
``remediation/``) for people working on them; the distribution maps those folders here
(``netdoctor.suite.tests``, ``netdoctor.suite.fixtures``, ``netdoctor.suite.remediation``), and
an editable install maps the same names onto the checkout's folders, so that every run, from
a checkout or from the wheel, imports one copy of each module under one name.

Run them with ``netdoctor diagnose|validate|remediate`` or
``pytest --pyargs netdoctor.suite.tests -m diagnose``.
"""

from __future__ import annotations

PACKAGE = __name__
TESTS = f"{PACKAGE}.tests"
FIXTURES = f"{PACKAGE}.fixtures"
REMEDIATION = f"{PACKAGE}.remediation"

FOLDERS: dict[str, str] = {TESTS: "tests", FIXTURES: "fixtures", REMEDIATION: "remediation"}
"""Package name -> the checkout folder it is built from (read by ``setup.py``)."""
