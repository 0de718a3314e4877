#!/usr/bin/env python3
"""Generates argon2_short.json: argon2 PHC hashes with 4 to 9 byte outputs, made by argon2-cffi
(which allows any hash_len >= 4). The `password-hash` crate's output type refuses fewer than 10
bytes, so these are what a hand-rolled PHC parser must verify.

Re-run with:
    pip install argon2-cffi
    python3 crates/auth-hash/tests/vectors/generate_argon2_short.py > crates/auth-hash/tests/vectors/argon2_short.json
"""
import importlib.metadata as md
import json

from argon2 import PasswordHasher, Type

vectors = []
for hash_len in range(4, 10):
    for kind, name in [(Type.ID, "argon2id"), (Type.I, "argon2i"), (Type.D, "argon2d")]:
        ph = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1, hash_len=hash_len, salt_len=8, type=kind)
        password = f"short-output-{hash_len}-{name}"
        encoded = ph.hash(password)
        vectors.append({"hash_len": hash_len, "password": password, "wrong": password + "x", "encoded": encoded})

print(json.dumps({
    "generated_by": "crates/auth-hash/tests/vectors/generate_argon2_short.py",
    "versions": {"argon2-cffi": md.version("argon2-cffi")},
    "vectors": vectors,
}, indent=1))
