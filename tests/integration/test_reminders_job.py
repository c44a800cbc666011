"""The daily expiry reminders on moto (DynamoDB and SES): one e-mail per (member, card,
lot) exactly 30 days before the lot expires, only to members who asked, never twice —
through re-runs, a run killed part way, two runs at once and a failed send — and a cost
that follows the members who asked, with logs free of addresses."""

from __future__ import annotations

import logging
import threading
from datetime import date

import pytest

from chalicelib.job_progress import JobInterrupted, JobState
from chalicelib.jobs.reminders import JOB, run_reminders
from chalicelib.ledger import keys
from chalicelib.ledger.domain import Actor, Source
from chalicelib.mypage.members import Members
from tests.members import sign_up

OPERATOR = Actor("operator", "ops")
GRANT_DAY = date(2022, 10, 24)  # its lot's last day is 2023-04-23 (§5.2)
REMIND_DAY = date(2023, 3, 24)  # 30 days before 2023-04-23
BIRTH = "1948-03-15"


def card_no(n: int) -> str:
    return f"JW{n:015d}"


def open_card(ledger, clock, n: int, grants=((GRANT_DAY, 5000),)) -> str:
    idm = f"0a{n:014x}"
    ledger.open_card(idm=idm, card_number=card_no(n), issuer_id="niimi", birth_date=BIRTH)
    for i, (day, points) in enumerate(grants):
        clock.set(day)
        ledger.grant(idm, points, request_id=f"grant:{idm}:{i}", actor=OPERATOR,
                     source=Source.INITIAL if i == 0 else Source.ADMIN)  # one initial grant per card
    return idm


def run(ledger, mypage, day: date, **kwargs):
    return run_reminders(ledger, Members(mypage.store), mypage.mailer, "niimi", on=day,
                         state=JobState(), **kwargs)


def mails(outbox) -> list[tuple[str, str, str]]:
    """Every reminder sent: (to, subject, body)."""
    return [
        (m.destinations["ToAddresses"][0], m.subject, m.body)
        for m in outbox.messages()
        if "有効期限が近い" in m.subject
    ]


def test_one_email_per_lot_exactly_30_days_before_it_expires(ledger, mypage_service, outbox, clock):
    open_card(ledger, clock, 1, grants=((GRANT_DAY, 5000), (date(2022, 11, 30), 123)))  # 2023-04-23, 2023-05-29
    sign_up(mypage_service, outbox, "hanako@example.jp", card_no(1), BIRTH)

    assert run(ledger, mypage_service, date(2023, 3, 23)).sent == 0  # 31 days before
    assert mails(outbox) == []
    report = run(ledger, mypage_service, REMIND_DAY)  # 30 days before
    assert (report.days, report.members, report.sent) == ([REMIND_DAY], 1, 1)
    [(to, subject, body)] = mails(outbox)
    assert to == "hanako@example.jp"
    assert subject == "【にーみんポイント】有効期限が近いポイントのお知らせ"
    assert "にーみんポイントをご利用いただきありがとうございます" in body
    assert "カード番号: JW••••••••••••001" in body
    assert "ポイント: 5,000ポイント" in body and "有効期限: 2023年4月23日（日）まで" in body
    assert card_no(1) not in body

    assert run(ledger, mypage_service, date(2023, 3, 25)).sent == 0  # 29 days before
    assert run(ledger, mypage_service, date(2023, 4, 28)).sent == 0
    assert run(ledger, mypage_service, date(2023, 4, 29)).sent == 1  # the 123-point lot, 30 days before 05-29
    assert len(mails(outbox)) == 2
    assert "ポイント: 123ポイント" in mails(outbox)[-1][2]
    assert JobState().last_done(JOB, "niimi") == date(2023, 4, 29)


def test_opted_out_members_get_nothing_and_a_member_gets_one_per_lot_of_each_card(
    ledger, mypage_service, outbox, clock
):
    for n in (1, 2, 3):
        open_card(ledger, clock, n)
    open_card(ledger, clock, 4, grants=((date(2022, 12, 1), 700),))  # not due yet
    hanako = sign_up(mypage_service, outbox, "hanako@example.jp", card_no(1), BIRTH)
    mypage_service.link_card(hanako, card_no(2), BIRTH)  # a family card
    mypage_service.link_card(hanako, card_no(4), BIRTH)
    taro = sign_up(mypage_service, outbox, "taro@example.jp", card_no(3), BIRTH)
    mypage_service.set_reminders(taro, False)
    jiro = sign_up(mypage_service, outbox, "jiro@example.jp", card_no(2), BIRTH)  # the family card, again
    mypage_service.set_reminders(jiro, False)

    report = run(ledger, mypage_service, REMIND_DAY)
    assert (report.members, report.sent) == (1, 2)
    sent = mails(outbox)
    assert {to for to, _, _ in sent} == {"hanako@example.jp"}
    assert sorted(body.split("カード番号: ")[1][:17] for _, _, body in sent) == [
        "JW••••••••••••001", "JW••••••••••••002"]

    mypage_service.set_reminders(jiro, True)  # changed their mind: jiro's own reminder of card 2
    again = run(ledger, mypage_service, REMIND_DAY, since=REMIND_DAY)
    assert (again.members, again.sent, again.already) == (2, 1, 2)
    assert mails(outbox)[-1][0] == "jiro@example.jp"
    assert len(mails(outbox)) == 3


def test_running_again_sends_nothing(ledger, mypage_service, outbox, clock):
    open_card(ledger, clock, 1, grants=((GRANT_DAY, 5000), (GRANT_DAY, 300)))
    sign_up(mypage_service, outbox, "hanako@example.jp", card_no(1), BIRTH)
    assert run(ledger, mypage_service, REMIND_DAY).sent == 2

    assert run(ledger, mypage_service, REMIND_DAY).days == []  # already done
    forced = run(ledger, mypage_service, REMIND_DAY, since=date(2023, 3, 20))
    assert (forced.sent, forced.already) == (0, 2)
    assert len(mails(outbox)) == 2


def build(ledger, mypage, outbox, clock, members: int = 4) -> list[str]:
    """Members with one card each, two lots due on REMIND_DAY per card."""
    addresses = []
    for n in range(1, members + 1):
        open_card(ledger, clock, n, grants=((GRANT_DAY, 1000 * n), (GRANT_DAY, n)))
        addresses.append(f"member{n}@example.jp")
        sign_up(mypage, outbox, addresses[-1], card_no(n), BIRTH)
    return addresses


@pytest.mark.parametrize("k", [1, 3, 7])
def test_a_run_killed_after_k_emails_then_run_again_sends_each_reminder_once(
    ledger, mypage_service, outbox, clock, k
):
    addresses = build(ledger, mypage_service, outbox, clock)
    with pytest.raises(JobInterrupted):
        run(ledger, mypage_service, REMIND_DAY, fail_after=k)
    assert len(mails(outbox)) == k
    assert JobState().last_done(JOB, "niimi") < REMIND_DAY

    resumed = run(ledger, mypage_service, REMIND_DAY)
    assert (resumed.sent, resumed.already) == (8 - k, k)
    sent = mails(outbox)
    assert len(sent) == len(set(sent)) == 8
    for n, address in enumerate(addresses, start=1):
        bodies = sorted(body for to, _, body in sent if to == address)
        assert len(bodies) == 2
        assert f"ポイント: {1000 * n:,}ポイント" in bodies[0] + bodies[1]
    assert JobState().last_done(JOB, "niimi") == REMIND_DAY


def test_two_runs_at_once_send_each_reminder_once(ledger, mypage_service, outbox, clock):
    build(ledger, mypage_service, outbox, clock)
    barrier = threading.Barrier(2)
    reports, errors = [], []

    def go() -> None:
        try:
            barrier.wait()
            reports.append(run(ledger, mypage_service, REMIND_DAY))
        except BaseException as exc:  # noqa: BLE001  (reported by the test thread)
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(r.sent for r in reports) == 8
    sent = mails(outbox)
    assert len(sent) == len(set(sent)) == 8


class FlakyMailer:
    """The real mailer, except that the first send to one address fails the way SES does,
    with the address in the error's text."""

    def __init__(self, mailer, address: str) -> None:
        self.mailer, self.address, self.failed = mailer, address, False

    def send(self, to: str, subject: str, body: str) -> None:
        if to == self.address and not self.failed:
            self.failed = True
            raise RuntimeError(f"MessageRejected: Email address is not verified: {to}")
        self.mailer.send(to, subject, body)


def test_a_failed_send_is_retried_by_the_next_run_and_no_address_is_logged(
    ledger, mypage_service, outbox, clock, caplog
):
    addresses = build(ledger, mypage_service, outbox, clock, members=2)
    flaky = FlakyMailer(mypage_service.mailer, addresses[0])
    caplog.set_level(logging.DEBUG, logger="chalicelib")
    state = JobState()

    assert run_reminders(ledger, Members(mypage_service.store), flaky, "niimi", state=state,
                         on=date(2023, 3, 23)).sent == 0
    first = run_reminders(ledger, Members(mypage_service.store), flaky, "niimi", state=state, on=REMIND_DAY)
    assert (first.sent, first.failed) == (3, 1)
    assert state.last_done(JOB, "niimi") == date(2023, 3, 23)  # the day stays undone
    assert [to for to, _, _ in mails(outbox)].count(addresses[0]) == 1

    retry = run_reminders(ledger, Members(mypage_service.store), flaky, "niimi", state=state, on=date(2023, 3, 25))
    assert retry.days == [REMIND_DAY, date(2023, 3, 25)]
    assert (retry.sent, retry.already, retry.failed) == (1, 3, 0)
    sent = mails(outbox)
    assert len(sent) == len(set(sent)) == 4
    assert [to for to, _, _ in sent].count(addresses[0]) == 2
    assert state.last_done(JOB, "niimi") == date(2023, 3, 25)

    assert any(r.getMessage() == "reminder not sent" for r in caplog.records)
    logged = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert "@example.jp" not in logged


def test_the_listing_follows_the_preference_and_withdrawal(ledger, mypage_service, outbox, clock):
    open_card(ledger, clock, 1)
    open_card(ledger, clock, 2)
    hanako = sign_up(mypage_service, outbox, "hanako@example.jp", card_no(1), BIRTH)
    taro = sign_up(mypage_service, outbox, "taro@example.jp", card_no(2), BIRTH)
    store = mypage_service.store
    assert set(store.remindees("niimi")) == {hanako.member_id, taro.member_id}  # on by default
    assert list(store.remindees("okayama")) == []

    mypage_service.set_reminders(hanako, False)
    assert set(store.remindees("niimi")) == {taro.member_id}
    mypage_service.set_reminders(hanako, True)
    mypage_service.set_reminders(hanako, True)
    assert set(store.remindees("niimi")) == {hanako.member_id, taro.member_id}

    from tests.members import PASSWORD

    mypage_service.withdraw(taro, PASSWORD)
    assert set(store.remindees("niimi")) == {hanako.member_id}
    assert run(ledger, mypage_service, REMIND_DAY).sent == 1


def test_the_job_reads_only_the_members_who_asked(ledger, mypage_service, outbox, clock):
    asked, declined = [], []
    for n in range(1, 4):
        open_card(ledger, clock, n)
        asked.append(sign_up(mypage_service, outbox, f"yes{n}@example.jp", card_no(n), BIRTH))
    for n in range(11, 16):
        open_card(ledger, clock, n)
        member = sign_up(mypage_service, outbox, f"no{n}@example.jp", card_no(n), BIRTH)
        mypage_service.set_reminders(member, False)
        declined.append(member)
    unlinked = [open_card(ledger, clock, n) for n in range(21, 31)]  # cards nobody linked

    calls: list[tuple[str, dict]] = []

    def hook(model, params, **_):
        calls.append((model.name, params))

    events = ledger.store.connection.client.meta.events
    ledger.issuer("niimi")  # warm, as in a warm container
    events.register("provide-client-params.dynamodb", hook, unique_id="test-reminder-count")
    try:
        report = run(ledger, mypage_service, REMIND_DAY)
    finally:
        events.unregister("provide-client-params.dynamodb", unique_id="test-reminder-count")

    assert (report.members, report.sent) == (3, 3)
    ops = [op for op, _ in calls]
    assert "Scan" not in ops
    assert ops.count("Query") == keys.SHARDS + len(asked)
    assert ops.count("BatchGetItem") == len(asked)
    claims = [p for op, p in calls if op == "PutItem" and p["Item"]["pk"]["S"].startswith("REMINDED#")]
    assert len(claims) == len(asked)  # one claim per reminder
    assert ops.count("PutItem") == len(asked) + 2  # and the job's progress: its start, its end
    everything = repr([params for _, params in calls])
    assert not any(m.member_id in everything for m in declined)
    assert not any(idm in everything for idm in unlinked)
