"""Credentials never reach a report."""

from __future__ import annotations

import json

import pytest

from netdoctor.redact import MASK, redact, redact_data

KUBECONFIG = """\
apiVersion: v1
kind: Config
users:
- name: admin
  user:
    client-certificate-data: LS0tLS1CRUdJTiBDRVJU
    client-key-data: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQ==
- name: sa
  user:
    token: s3cr3t-sa-token-value
"""

SECRET_YAML = """\
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: default
data:
  username: YWRtaW4=
  password: c3VwZXJzZWNyZXQ=
  config.json: eyJhIjoxfQ==
type: Opaque
"""


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abc.def-ghi", "abc.def-ghi"),
        ("curl -H 'authorization: bearer Zm9vYmFy' https://10.96.0.1", "Zm9vYmFy"),
        ("kubectl --token=hunter2 get pods", "hunter2"),
        ("kubectl --token hunter2 get pods", "hunter2"),
        ("password=hunter2", "hunter2"),
        ("DB_PASSWORD: hunter2", "hunter2"),
        ('{"token": "hunter2", "other": 1}', "hunter2"),
        ("jwt eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJl end", "eyJhbGciOi"),
    ],
    ids=["bearer-header", "bearer-curl", "flag-eq", "flag-space", "ini", "env-yaml", "json",
         "jwt"],
)
def test_secrets_scrubbed(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert MASK in out


def test_kubeconfig_keys_and_tokens() -> None:
    out = redact(KUBECONFIG)
    assert "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQ==" not in out
    assert "s3cr3t-sa-token-value" not in out
    assert "name: admin" in out


def test_secret_yaml_data_scrubbed_metadata_kept() -> None:
    out = redact(SECRET_YAML)
    for value in ("YWRtaW4=", "c3VwZXJzZWNyZXQ=", "eyJhIjoxfQ=="):
        assert value not in out
    assert "name: db" in out
    assert "type: Opaque" in out
    assert out.count(MASK) == 3


def test_secret_json_data_scrubbed() -> None:
    doc = {"kind": "Secret", "metadata": {"name": "db"}, "data": {"user": "YWRtaW4="}}
    out = redact(json.dumps(doc))
    assert "YWRtaW4=" not in out
    assert json.loads(out)["metadata"] == {"name": "db"}


@pytest.mark.parametrize(
    "text",
    ["nameserver 10.96.0.10", "3 packets transmitted, 0 received", "token count: 5 tokens",
     "kind: ConfigMap\ndata:\n  Corefile: |\n    .:53 {\n"],
)
def test_ordinary_text_untouched(text: str) -> None:
    assert redact(text) == text


def test_redact_data_walks_structures() -> None:
    data = {"cluster": {"auth": {"token": "abc", "user": "me"}, "notes": ["Bearer xyz"]}}
    out = redact_data(data)
    assert out == {"cluster": {"auth": {"token": MASK, "user": "me"}, "notes": [f"Bearer {MASK}"]}}
