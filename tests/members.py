"""Helpers for tests that need MyPage members: sign up through the service, as a resident would."""

from __future__ import annotations

PASSWORD = "correct horse battery"


def sign_up(mypage, outbox, email: str, card_number: str, birth_date: str):
    """A new member with its first card linked; returns its session."""
    mypage.start_signup(email)
    token = mypage.verify_signup(email, outbox.code_for(email))
    logged_in = mypage.complete_signup(token, card_number, birth_date, PASSWORD)
    return mypage.authenticate(logged_in.cookie)
