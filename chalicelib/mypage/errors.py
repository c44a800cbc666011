"""MyPage errors: one root, one subclass per rule. Each has a stable code, an HTTP
status and a message in Japanese that the PWA shows as it is. The root derives from the
shared ChiikiError; its answers are never cached (`headers`)."""

from __future__ import annotations

from ..errors import ChiikiError


class MyPageError(ChiikiError):
    code = "mypage_error"
    message = "処理できませんでした。"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)

    def headers(self) -> dict[str, str]:
        """A resident's answer is never cached; a refusal saying when to try again says it
        in Retry-After."""
        retry_after = getattr(self, "retry_after", None)
        return {"Cache-Control": "no-store", **({"Retry-After": str(retry_after)} if retry_after else {})}


class InvalidInput(MyPageError):
    code = "invalid_request"
    message = "入力内容を確認してください。"


class CodeInvalid(MyPageError):
    code = "code_invalid"
    message = "確認コードが正しくないか、有効期限が切れています。"

    def __init__(self, tries_left: int | None = None) -> None:
        text = self.message
        if tries_left:
            text += f"（あと{tries_left}回入力できます）"
        super().__init__(text)


class TooManyAttempts(MyPageError):
    """Every refusal for too many attempts: the same code and status whether or not the
    address is registered. `retry_after` (seconds) becomes the Retry-After header."""

    code = "too_many_attempts"
    http_status = 429
    message = "試行回数が上限に達しました。しばらくしてからもう一度お試しください。"

    def __init__(self, message: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SignupExpired(MyPageError):
    code = "signup_expired"
    message = "登録の手続きの有効期限が切れました。最初からやり直してください。"


class EmailTaken(MyPageError):
    code = "email_taken"
    http_status = 409
    message = "このメールアドレスは登録済みです。ログインしてください。"


class CardMismatch(MyPageError):
    code = "card_mismatch"
    message = "カード番号または生年月日が一致しません。"


class LinkLocked(MyPageError):
    code = "link_locked"
    http_status = 429
    message = "このカードの登録の失敗が続いたため、本日は登録できません。明日もう一度お試しください。"

    def __init__(self, retry_after: int | None = None) -> None:
        super().__init__()
        self.retry_after = retry_after


class CardAlreadyLinked(MyPageError):
    code = "card_already_linked"
    http_status = 409
    message = "このカードはすでに登録されています。"


class WeakPassword(MyPageError):
    code = "weak_password"
    message = "パスワードは8文字以上128文字以内で入力してください。"


class CommonPassword(WeakPassword):
    code = "common_password"
    message = ("このパスワードはよく使われているか、流出したパスワードの一覧にあるため使えません。"
               "推測されにくい別のパスワードを入力してください。")


class InvalidEmail(InvalidInput):
    code = "invalid_email"
    message = "メールアドレスの形式が正しくありません。"


class LoginFailed(MyPageError):
    code = "login_failed"
    http_status = 401
    message = "メールアドレスまたはパスワードが正しくありません。"


class NotLoggedIn(MyPageError):
    code = "not_logged_in"
    http_status = 401
    message = "ログインしてください。"


class CsrfFailed(MyPageError):
    code = "csrf_failed"
    http_status = 403
    message = "画面の有効期限が切れました。再読み込みしてからもう一度お試しください。"


class CardNotLinked(MyPageError):
    code = "card_not_found"
    http_status = 404
    message = "カードが見つかりません。"
