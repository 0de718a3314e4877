#!/usr/bin/env python3
"""Generates vectors.json: signed values made by tortoise-auth's own Signer, TimestampSigner and
make_token, so auth-sign is proven byte-identical on the wire.

    python3 -m venv /tmp/v && /tmp/v/bin/pip install tortoise-auth
    /tmp/v/bin/python crates/auth-sign/tests/vectors/generate.py > crates/auth-sign/tests/vectors/vectors.json
"""
import importlib.metadata as md
import json
import sys
from unittest import mock

from tortoise_auth import make_token
from tortoise_auth.signing import Signer, TimestampSigner

SECRETS = ["0123456789abcdef0123456789abcdef-secret", "ünïcödé-secret-of-more-than-32-bytes!!"]
VALUES = ["hello", "42", "", "a:b:c", "user@example.com", "ünïcödé ✓", "x" * 300, "123456"]
NOW = 1_795_345_084

vectors = []
for secret in SECRETS:
    signer = Signer(secret)
    for value in VALUES:
        vectors.append({"kind": "signer", "secret": secret, "value": value, "signed": signer.sign(value)})
    with mock.patch("time.time", return_value=NOW + 0.75):
        ts = TimestampSigner(secret)
        for value in VALUES:
            vectors.append({"kind": "timestamp", "secret": secret, "value": value, "now": NOW,
                            "signed": ts.sign_with_timestamp(value)})
        vectors.append({"kind": "make_token", "secret": secret, "value": "42", "now": NOW,
                        "signed": make_token("42", secret=secret)})

json.dump({"versions": {"tortoise-auth": md.version("tortoise-auth")}, "vectors": vectors}, sys.stdout,
          indent=1, ensure_ascii=False)
print()
