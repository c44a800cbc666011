"""MyPage hashes passwords with argon2id at the library's default cost. The tests' process
hashes at the cheapest cost (tests/conftest.py, cheap_password_hashes): this checks that the
code itself asks for the library's defaults, so the stand-in cannot hide a weaker setting."""

from __future__ import annotations

import argon2

from chalicelib.mypage.service import _Passwords
from tests import conftest


def test_mypage_hashes_with_argon2id_at_the_librarys_default_cost(monkeypatch):
    assert conftest.LIBRARY_PASSWORD_HASHER is not None
    monkeypatch.setattr(argon2, "PasswordHasher", conftest.LIBRARY_PASSWORD_HASHER)
    passwords = _Passwords()
    stored = passwords.hash("correct horse battery staple")
    parameters = argon2.extract_parameters(stored)
    default = argon2.profiles.RFC_9106_LOW_MEMORY  # argon2-cffi's default profile
    assert (parameters.type, parameters.time_cost, parameters.memory_cost, parameters.parallelism) == (
        argon2.Type.ID, default.time_cost, default.memory_cost, default.parallelism)
    assert passwords.verify(stored, "correct horse battery staple")
    assert not passwords.verify(stored, "correct horse battery stapler")


def test_the_tests_stand_in_is_cheaper_but_the_same_algorithm():
    stored = argon2.PasswordHasher().hash("x")  # the stand-in, in this process
    assert argon2.extract_parameters(stored).type is argon2.Type.ID
    assert argon2.extract_parameters(stored).memory_cost < argon2.profiles.RFC_9106_LOW_MEMORY.memory_cost
