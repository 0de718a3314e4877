#!/usr/bin/env python3
"""Generates vectors.json: password hashes made by the real Python libraries our users migrate
from, so auth-hash is tested against what those libraries actually write.

Re-run with (versions used are recorded in the output):
    python3 -m venv /tmp/v && /tmp/v/bin/pip install 'Django==5.1.*' passlib argon2-cffi bcrypt tortoise-auth
    /tmp/v/bin/python crates/auth-hash/tests/vectors/generate.py > crates/auth-hash/tests/vectors/vectors.json

Costs are lowered for most vectors (the formats are what matters, and the suite must stay fast);
each library's default cost appears at least once.
"""
import base64
import hashlib
import importlib.metadata as md
import json
import sys
import warnings

warnings.filterwarnings("ignore")

import argon2
import bcrypt
import django
from django.conf import settings

settings.configure(PASSWORD_HASHERS=[
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.BCryptPasswordHasher",
])
django.setup()
from django.contrib.auth import hashers as dj  # noqa: E402
from passlib.hash import sha256_crypt, sha512_crypt  # noqa: E402
from tortoise_auth.hashers import default_password_hash  # noqa: E402
from tortoise_auth.hashers.pbkdf2 import PBKDF2Hasher as TortoisePBKDF2  # noqa: E402

PASSWORDS = [
    "correct horse battery staple",
    "",
    "pässwörd-ünïcödé-日本語-🔑",
    "p@ss:w$rd with spaces\tand\ttabs",
    "x" * 100,
]
BCRYPT_PASSWORDS = PASSWORDS[:4] + ["y" * 72]  # pyca/bcrypt 5 refuses more than 72 bytes

vectors = []


def wrong_for(password):
    wrong = {"wrong", password + "x", password.upper() if password.upper() != password else password + "Y"}
    if password:
        wrong.add(password[:-1])
        wrong.add(" " + password)
    else:
        wrong.add(" ")
    wrong.discard(password)
    return sorted(wrong)


def add(library, scheme, password, encoded, note=""):
    vectors.append({
        "library": library,
        "scheme": scheme,
        "password": password,
        "hash": encoded,
        "wrong": wrong_for(password),
        "note": note,
    })


# --- Django ------------------------------------------------------------------------------
class FastArgon2(dj.Argon2PasswordHasher):
    time_cost = 1
    memory_cost = 1024
    parallelism = 2


class FastBcryptSha256(dj.BCryptSHA256PasswordHasher):
    rounds = 4


class FastBcrypt(dj.BCryptPasswordHasher):
    rounds = 4


for pw in PASSWORDS:
    pbkdf2 = dj.PBKDF2PasswordHasher()
    add("django", "pbkdf2_sha256", pw, pbkdf2.encode(pw, pbkdf2.salt(), iterations=1000))
    sha1 = dj.PBKDF2SHA1PasswordHasher()
    add("django", "pbkdf2_sha1", pw, sha1.encode(pw, sha1.salt(), iterations=1000))
    add("django", "argon2", pw, dj.make_password(pw, hasher=FastArgon2()))
    add("django", "bcrypt_sha256", pw, dj.make_password(pw, hasher=FastBcryptSha256()))
for pw in BCRYPT_PASSWORDS:
    add("django", "bcrypt", pw, dj.make_password(pw, hasher=FastBcrypt()))
# A long password through bcrypt_sha256: the SHA-256 pre-hash means no truncation.
add("django", "bcrypt_sha256", "z" * 200, dj.make_password("z" * 200, hasher=FastBcryptSha256()),
    "200 bytes: bcrypt_sha256 pre-hashes, so nothing is truncated")
# Django's own defaults, once each.
add("django", "pbkdf2_sha256", PASSWORDS[0], dj.make_password(PASSWORDS[0], hasher="pbkdf2_sha256"),
    f"Django {django.get_version()} default iterations")
add("django", "argon2", PASSWORDS[0], dj.make_password(PASSWORDS[0], hasher="argon2"), "Django default parameters")
add("django", "bcrypt_sha256", PASSWORDS[0], dj.make_password(PASSWORDS[0], hasher="bcrypt_sha256"), "Django default rounds")
# Older Django wrote 12-character salts.
old = dj.PBKDF2PasswordHasher()
add("django", "pbkdf2_sha256", PASSWORDS[0], old.encode(PASSWORDS[0], "abcdefghijkl", iterations=1000), "12-character salt")

# --- argon2-cffi -------------------------------------------------------------------------
ph = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=2)
for pw in PASSWORDS:
    add("argon2-cffi", "argon2id", pw, ph.hash(pw))
for typ, name in [(argon2.low_level.Type.I, "argon2i"), (argon2.low_level.Type.D, "argon2d")]:
    for pw in PASSWORDS[:3]:
        raw = argon2.low_level.hash_secret(pw.encode(), b"somesaltsomesalt", time_cost=2, memory_cost=512,
                                           parallelism=1, hash_len=32, type=typ)
        add("argon2-cffi", name, pw, raw.decode())
add("argon2-cffi", "argon2id", PASSWORDS[0], argon2.PasswordHasher().hash(PASSWORDS[0]), "argon2-cffi defaults")
add("argon2-cffi", "argon2id", PASSWORDS[0],
    argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash(PASSWORDS[0]),
    "OWASP parameters (our default): needs no update")

# --- pyca/bcrypt -------------------------------------------------------------------------
for pw in BCRYPT_PASSWORDS:
    add("bcrypt", "bcrypt-2b", pw, bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=4)).decode())
    add("bcrypt", "bcrypt-2a", pw, bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=4, prefix=b"2a")).decode())

# --- passlib -----------------------------------------------------------------------------
for pw in PASSWORDS:
    add("passlib", "sha256_crypt", pw, sha256_crypt.using(rounds=5000).hash(pw))
    add("passlib", "sha512_crypt", pw, sha512_crypt.using(rounds=5000).hash(pw))
add("passlib", "sha512_crypt", PASSWORDS[0], sha512_crypt.hash(PASSWORDS[0]), "passlib default rounds")
for pw in BCRYPT_PASSWORDS[:3]:
    h = bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=4)).decode()
    add("bcrypt", "bcrypt-2y", pw, "$2y$" + h[4:], "2y (PHP, passlib) relabelled from 2b: same algorithm")
# 2x marks crypt_blowfish's old sign-extension bug; for ASCII input it equals 2a.
h = bcrypt.hashpw(b"correct horse battery staple", bcrypt.gensalt(rounds=4, prefix=b"2a")).decode()
add("bcrypt", "bcrypt-2x", "correct horse battery staple", "$2x$" + h[4:], "2x relabelled from 2a (ASCII password)")
# passlib 1.7.4's own bcrypt backend cannot load pyca/bcrypt 5, so passlib contributes the
# sha-crypt formats; the 2y/2x labels above are what PHP and crypt_blowfish write.

# --- tortoise-auth -----------------------------------------------------------------------
ta = default_password_hash(argon2_time_cost=1, argon2_memory_cost=1024, argon2_parallelism=2, bcrypt_rounds=4,
                           pbkdf2_iterations=1000)
for pw in PASSWORDS:
    add("tortoise-auth", "argon2id", pw, ta.hash(pw))
    add("tortoise-auth", "tortoise-pbkdf2", pw, TortoisePBKDF2(iterations=1000).hash(pw))
add("tortoise-auth", "argon2id", PASSWORDS[0], default_password_hash().hash(PASSWORDS[0]),
    "tortoise-auth defaults m=65536,t=3,p=4")
add("tortoise-auth", "tortoise-pbkdf2", PASSWORDS[0], TortoisePBKDF2().hash(PASSWORDS[0]),
    "tortoise-auth default iterations")
for h in ta.hashers:
    if type(h).__name__ == "BcryptHasher":
        for pw in BCRYPT_PASSWORDS[:3]:
            add("tortoise-auth", "bcrypt-2b", pw, h.hash(pw))

# Self-check: every vector verifies with the library that made it (where it can say).
def django_accepts(password, encoded):
    try:
        return dj.check_password(password, encoded)
    except ValueError:  # pyca/bcrypt 5 raises for inputs over 72 bytes
        return False


for v in vectors:
    if v["library"] == "django":
        assert django_accepts(v["password"], v["hash"]), v
        assert not any(django_accepts(w, v["hash"]) for w in v["wrong"]), v

versions = {name: md.version(name) for name in ["Django", "argon2-cffi", "bcrypt", "passlib", "tortoise-auth", "pwdlib"]}
json.dump({"generated_by": "generate.py", "versions": versions, "vectors": vectors}, sys.stdout, indent=1,
          ensure_ascii=False)
print()
