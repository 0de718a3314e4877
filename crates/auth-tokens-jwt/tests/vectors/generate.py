#!/usr/bin/env python3
"""Generates vectors.json: JWTs made by tortoise-auth's JWTBackend and by PyJWT, so
auth-tokens-jwt is proven to accept what those services issue (same secret or public key).

    python3 -m venv /tmp/v && /tmp/v/bin/pip install tortoise-auth pyjwt cryptography
    /tmp/v/bin/python crates/auth-tokens-jwt/tests/vectors/generate.py > crates/auth-tokens-jwt/tests/vectors/vectors.json
"""
import asyncio
import importlib.metadata as md
import json
import pathlib
import sys
from unittest import mock

import jwt
from tortoise_auth import AuthConfig
from tortoise_auth.tokens.jwt import JWTBackend

NOW = 1_795_345_084
SECRET = "jwt-secret-0123456789abcdef0123456789abcdef0123456789abcdef01234"
KEYS = pathlib.Path(__file__).resolve().parent.parent / "keys"
vectors = []


async def tortoise():
    for cfg, note in [
        (AuthConfig(jwt_secret=SECRET), "defaults"),
        (AuthConfig(jwt_secret=SECRET, jwt_issuer="https://auth.example.com", jwt_audience="api"), "issuer and audience"),
        (AuthConfig(jwt_secret=SECRET, jwt_algorithm="HS512"), "HS512"),
    ]:
        backend = JWTBackend(cfg)
        with mock.patch("time.time", return_value=NOW + 0.5):
            pair = await backend.create_tokens("42", role="admin", tenant="acme")
        for kind, token in [("access", pair.access_token), ("refresh", pair.refresh_token)]:
            vectors.append({
                "source": "tortoise-auth", "note": note, "alg": cfg.jwt_algorithm, "kind": kind,
                "token": token, "now": NOW, "sub": "42",
                "issuer": cfg.jwt_issuer or None, "audience": cfg.jwt_audience or None,
                "extra": {"role": "admin", "tenant": "acme"} if kind == "access" else None,
            })


asyncio.run(tortoise())

base = {"sub": "7", "jti": "pyjwt-jti", "iat": NOW, "exp": NOW + 900, "extra": {"plan": "pro"}}
for alg, key in [("HS256", SECRET), ("HS384", SECRET), ("HS512", SECRET)]:
    vectors.append({"source": "pyjwt", "note": alg, "alg": alg, "kind": "access",
                    "token": jwt.encode({**base, "token_type": "access"}, key, algorithm=alg),
                    "now": NOW, "sub": "7", "issuer": None, "audience": None, "extra": {"plan": "pro"}})
for alg, name in [("EdDSA", "ed25519"), ("ES256", "es256"), ("RS256", "rs256")]:
    private = (KEYS / f"{name}.pem").read_text()
    token = jwt.encode({**base, "token_type": "access"}, private, algorithm=alg, headers={"kid": "k1"})
    vectors.append({"source": "pyjwt", "note": f"{alg} with kid", "alg": alg, "kind": "access", "token": token,
                    "now": NOW, "sub": "7", "issuer": None, "audience": None, "extra": {"plan": "pro"}})

versions = {n: md.version(n) for n in ["tortoise-auth", "PyJWT", "cryptography"]}
json.dump({"versions": versions, "vectors": vectors}, sys.stdout, indent=1)
print()
