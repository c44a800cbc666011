"""The expiry reminder e-mail, pure: Japanese, with the issuer's point name, the masked
card number, the points and the expiry date, and nothing a stranger could use."""

from datetime import date

from chalicelib.mypage.domain import japanese_date, mask_card_number, reminder_mail


def test_the_reminder_names_the_points_card_amount_and_day_in_japanese():
    masked = mask_card_number("JW123456789012345")
    subject, body = reminder_mail("にーみんポイント", masked, 5000, date(2023, 4, 23))
    assert subject == "【にーみんポイント】有効期限が近いポイントのお知らせ"
    assert "カード番号: JW••••••••••••345" in body
    assert "ポイント: 5,000ポイント" in body
    assert "有効期限: 2023年4月23日（日）まで" in body
    assert "有効期限が近づいています" in body
    assert "配信を停止" in body  # how to stop them
    assert "JW123456789012345" not in body
    assert "http" not in body and "@" not in body  # no link, no address


def test_another_issuer_gets_its_own_point_name():
    subject, body = reminder_mail("おかやまポイント", "JW•••", 73, date(2023, 5, 29))
    assert "おかやまポイント" in subject and body.startswith("おかやまポイントを")
    assert "にーみん" not in subject + body
    assert "ポイント: 73ポイント" in body


def test_japanese_dates_carry_the_weekday():
    assert japanese_date(date(2023, 5, 29)) == "2023年5月29日（月）"
    assert japanese_date(date(2024, 2, 29)) == "2024年2月29日（木）"
