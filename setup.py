"""Which packages the distribution holds; everything else is in pyproject.toml.

The checks (``tests/``), their fixtures (``fixtures/``) and the remediation hooks
(``remediation/``) stay at the checkout's top level and are installed as
``netdoctor.suite.tests``, ``.fixtures`` and ``.remediation`` (never as top-level ``tests`` or
``fixtures``). Every package below those folders is found here, so a new module or
subpackage ships without being listed anywhere.
"""

from setuptools import find_packages, setup

# Kept in step with netdoctor/suite/__init__.py's FOLDERS (not imported: the build must not
# import the project).
SUITE = {
    "netdoctor.suite.tests": "tests",
    "netdoctor.suite.fixtures": "fixtures",
    "netdoctor.suite.remediation": "remediation",
}

packages = find_packages(include=["netdoctor", "netdoctor.*"])
for name, folder in SUITE.items():
    packages += [name, *(f"{name}.{sub}" for sub in find_packages(folder))]

setup(packages=packages, package_dir=SUITE)
