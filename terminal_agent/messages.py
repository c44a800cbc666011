"""What the clerk reads: one short Japanese sentence per outcome, saying what to do.

Keys are the API's stable error codes (chalicelib/ledger/errors.py,
chalicelib/terminals/errors.py, the signature codes of chalicelib/terminals/signatures.py)
and the agent's own outcomes (offline, a queued record, a card without history). A code
this table does not know still gets a sentence, with the code, for the support desk.
"""

from __future__ import annotations

from .card import CardReaderError
from .client import ApiError, Offline

MESSAGES: dict[str, str] = {
    # points and cards
    "insufficient_points": "ポイントが不足しています（残高 {balance} pt）",
    "invalid_amount": "金額は 1 以上の整数で入力してください",
    "invalid_request": "送信内容に誤りがあります。操作をやり直してください",
    "card_not_found": "このカードは登録されていません",
    "card_exists": "このカードは既に登録されています",
    "initial_already_granted": "このカードの初回ポイントは付与済みです",
    "wrong_issuer": "このカードはこの店舗ではご利用いただけません",
    "card_closed": "このカードは返却・無効化されているため、ご利用いただけません",
    "request_id_reused": "同じ取引番号で別の内容が送信されました。操作をやり直してください",
    "busy": "混み合っています。もう一度カードをタッチしてください",
    "unknown_issuer": "この端末の自治体が登録されていません。運営事務局にお問い合わせください",
    "ledger_error": "ポイントの処理に失敗しました。係員にお問い合わせください",
    # cancels
    "already_cancelled": "この支払いは既に取り消されています",
    "spend_not_found": "このカードに、取り消すポイント支払いが見つかりません",
    "not_your_spend": "このポイント支払いは他の店舗の取引のため、取り消せません",
    "not_found": "該当する取引が見つかりません",
    # records and events
    "record_conflict": "この取引は既に別の内容で記録されています。係員にお問い合わせください",
    "record_refused": "この記録は受け付けられませんでした。運営事務局にお問い合わせください",
    "amount_over_limit": "1回の電子マネー取引は20,000円までです。金額を確認してください",
    "terminal_daily_limit": "この端末の本日の電子マネー記録の上限に達しました。運営事務局にお問い合わせください",
    "card_daily_limit": "このカードの本日の電子マネー記録の上限に達しました。係員にお問い合わせください",
    "nothing_to_take_back": "取り戻す還元ポイントがありません",
    "event_closed": "イベントの受付時間外です",
    "already_checked_in": "このカードは既にチェックイン済みです",
    # this terminal
    "operation_not_allowed": "この端末ではこの操作はできません",
    "terminal_error": "端末の処理に失敗しました。係員にお問い合わせください",
    "bad_signature": "端末の認証に失敗しました。運営事務局にお問い合わせください",
    "unknown_key": "この端末は登録されていません。運営事務局にお問い合わせください",
    "key_disabled": "この端末は利用停止中です。運営事務局にお問い合わせください",
    "stale_signature": "端末の時計がずれています。時刻を合わせてからやり直してください",
    "nonce_reused": "通信が重複しました。もう一度お試しください",
    "digest_mismatch": "送信データが壊れていました。もう一度お試しください",
    "missing_nonce": "端末の認証情報が不足しています。運営事務局にお問い合わせください",
    "bad_nonce": "端末の認証情報が正しくありません。運営事務局にお問い合わせください",
    "expired_signature": "端末の時計がずれているか、送信が遅れました。時刻を確認してもう一度お試しください",
    # the agent's own outcomes
    "offline": "通信できません。電子マネー記録は保存し、後で送信します",
    "charge_offline": "通信できません。チャージ記録は保存し、後で送信します",
    "cancel_offline": "通信できません。取消の記録は保存し、後で送信します",
    "point_payment_offline": "通信できないため、ポイント支払いはできません",
    "offline_retry": "通信できません。ネットワークを確認して、もう一度お試しください",
    "invalid_charge_kind": "チャージの種別が正しくありません（例: cash）",
    "no_card_history": "カードの利用履歴が読み取れないため、記録できません",
    "gateway_failure": "サーバーが応答しません。しばらくしてからもう一度お試しください",
    "invalid_response": "サーバーの応答が正しくありません。係員にお問い合わせください",
    "reader_error": "カードリーダーに問題があります（{detail}）",
    "no_card": "カードが読み取れませんでした。もう一度お試しください",
    # rows of the offline queue refused on the terminal (never sent)
    "rejected_waiting": "受付不可の記録が {count} 件あります。運営事務局に連絡してください（rejected コマンドで一覧）",
    "path_not_allowed": "後から送信できない種類の記録のため、送信しませんでした",
    "unreadable_body": "記録の内容が壊れているため、送信しませんでした",
    "bad_fields": "記録の項目が正しくないため、送信しませんでした",
}

FALLBACK = "エラーが発生しました（{code}）。係員にお問い合わせください"


def message(code: str, **values: object) -> str:
    """The sentence for `code`; numbers get thousands separators (5,000)."""
    shown = {k: f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else v for k, v in values.items()}
    template = MESSAGES.get(code)
    if template is None:
        return FALLBACK.format(code=code)
    try:
        return template.format(**shown)
    except KeyError:
        # A template needing a value the error did not carry (a balance-less
        # insufficient_points): the sentence without its figure still helps.
        return template.split("（")[0]


def describe(error: Exception) -> str:
    """The clerk's sentence for an error raised by the agent, the API or the reader."""
    if isinstance(error, ApiError):
        if error.status >= 500 and error.code not in MESSAGES:
            return message("gateway_failure")
        return message(error.code, balance=error.balance) if error.balance is not None else message(error.code)
    if isinstance(error, Offline):
        return message("offline_retry")
    if isinstance(error, CardReaderError):
        return message("reader_error", detail=str(error))
    code = getattr(error, "code", None)
    if isinstance(code, str):
        return message(code)
    return FALLBACK.format(code=type(error).__name__)
