"""Generates pyotp.json: TOTP codes computed by pyotp, which auth-mfa must reproduce.

    python3 -m venv venv && venv/bin/pip install pyotp && venv/bin/python generate.py
"""
import hashlib
import json

import pyotp
from importlib.metadata import version

SECRETS = ["JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "KRSXG5CTMVRXEZLUKN2XAZLSKNSWG4TFOQ"]
TIMES = [0, 29, 30, 59, 1_111_111_109, 1_700_000_000, 1_800_000_015, 2_000_000_000]
CASES = [("SHA1", hashlib.sha1, 6), ("SHA1", hashlib.sha1, 8), ("SHA256", hashlib.sha256, 6),
         ("SHA512", hashlib.sha512, 8)]

vectors = []
for secret in SECRETS:
    for name, digest, digits in CASES:
        totp = pyotp.TOTP(secret, digits=digits, digest=digest, interval=30)
        for t in TIMES:
            vectors.append({"secret": secret, "algorithm": name, "digits": digits, "time": t,
                            "code": totp.at(t)})

uri = pyotp.TOTP("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").provisioning_uri(name="alice+mfa@example.com", issuer_name="Acme & Co")
json.dump({"pyotp": version("pyotp"), "vectors": vectors, "uri_example": uri},
          open("pyotp.json", "w"), indent=1)
print(len(vectors), "vectors;", uri)
