#!/usr/bin/env python3
"""Generates separators.json: values signed by tortoise-auth's Signer and TimestampSigner with
custom separators, which verify when auth-sign's signer is configured with the same separator.

    pip install tortoise-auth
    python3 crates/auth-sign/tests/vectors/generate_separators.py > crates/auth-sign/tests/vectors/separators.json
"""
import importlib.metadata as md
import json
import sys
from unittest import mock

from tortoise_auth.signing import Signer, TimestampSigner

SECRET = "0123456789abcdef0123456789abcdef-secret"
VALUES = ["hello", "42", "", "a.b.c", "user@example.com", "ünïcödé ✓"]
NOW = 1_795_345_084

vectors = []
for sep in [".", "|", "~", "::"]:
    signer = Signer(SECRET, separator=sep)
    for value in VALUES:
        vectors.append({"kind": "signer", "separator": sep, "value": value, "signed": signer.sign(value)})
    with mock.patch("time.time", return_value=NOW + 0.25):
        ts = TimestampSigner(SECRET, separator=sep)
        for value in VALUES:
            vectors.append({"kind": "timestamp", "separator": sep, "value": value, "now": NOW,
                            "signed": ts.sign_with_timestamp(value)})

json.dump({"versions": {"tortoise-auth": md.version("tortoise-auth")}, "secret": SECRET, "vectors": vectors},
          sys.stdout, indent=1, ensure_ascii=False)
print()
