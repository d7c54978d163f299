"""Who is signed in to the finance console: Cognito sign-in, the session cookie, CSRF tokens, rights.

- Sign-in: e-mail and password from our own form, Cognito ``InitiateAuth`` (USER_PASSWORD_AUTH),
  with the two challenges a person may meet: a new password (users created by an admin) and an
  authenticator code (MFA, the ``ConsoleMfa`` parameter).
- The session cookie carries Cognito's ID token and our own started/last-active times and CSRF nonce,
  sealed with an HMAC (key: the ``ConsoleSessionSecret``). Every request verifies both: the seal, then
  the token against the pool's JWKS (RS256, issuer = our pool, audience = our app client,
  ``token_use`` = id, not expired). A cookie made for another pool or client fails the token check
  even when sealed with our key.
- Timeouts: idle (``CONSOLE_IDLE_MINUTES`` since the last request) and absolute (the ID token's expiry,
  ``ConsoleSessionHours``, and never more than that after sign-in).
- Cookie flags: HttpOnly, SameSite=Strict, Secure; Secure is left out only when the stage is ``local``
  and the request came over plain http (``make dev``), or browsers would drop the cookie there.
- Rights: the groups ``viewer`` < ``clerk`` < ``admin`` (``cognito:groups``); a person in none sees
  the 403 page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from invoicing import root

COOKIE = "console_session"
LOGIN_COOKIE = "console_login"  # binds the login form's CSRF token before there is a session
CHALLENGE_COOKIE = "console_challenge"  # Cognito's challenge session between two sign-in steps
RIGHTS = {"viewer": 1, "clerk": 2, "admin": 3}
TOUCH_EVERY_SECONDS = 60  # the last-active time is re-sealed at most once a minute
JWKS_REFRESH_SECONDS = 300  # an unknown key id refetches the JWKS at most this often


class SessionRefused(Exception):
    """No valid session: the person signs in (again). ``reason`` is for the log, never the page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SignInFailed(Exception):
    """Cognito refused the sign-in; ``message`` is safe to show."""

    def __init__(self, message: str, *, field: str = "password") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class ConsoleConfig:
    user_pool_id: str
    client_id: str
    secret_arn: str
    idle_minutes: int
    session_hours: int
    stage: str
    region: str
    cognito_endpoint: str  # empty: the public Cognito endpoint

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.user_pool_id}"

    @property
    def jwks_url(self) -> str:
        base = self.cognito_endpoint.rstrip("/") or f"https://cognito-idp.{self.region}.amazonaws.com"
        return f"{base}/{self.user_pool_id}/.well-known/jwks.json"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ConsoleConfig:
        env = dict(os.environ if env is None else env)
        return cls(
            user_pool_id=env.get("CONSOLE_USER_POOL_ID", ""),
            client_id=env.get("CONSOLE_CLIENT_ID", ""),
            secret_arn=env.get("CONSOLE_SESSION_SECRET_ARN", ""),
            idle_minutes=int(env.get("CONSOLE_IDLE_MINUTES") or 30),
            session_hours=int(env.get("CONSOLE_SESSION_HOURS") or 8),
            stage=env.get("STAGE", "dev"),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            cognito_endpoint=env.get("AWS_ENDPOINT_URL_COGNITO_IDP") or env.get("AWS_ENDPOINT_URL") or "",
        )


def get_config() -> ConsoleConfig:
    return root.current().once(ConsoleConfig, ConsoleConfig.from_env)


@dataclass(frozen=True)
class Person:
    email: str
    groups: tuple[str, ...]
    session: dict[str, Any]

    @property
    def role(self) -> str:
        ranked = sorted((RIGHTS[g], g) for g in self.groups if g in RIGHTS)
        return ranked[-1][1] if ranked else ""

    def can(self, role: str) -> bool:
        return bool(self.role) and RIGHTS[self.role] >= RIGHTS[role]

    @property
    def principal(self) -> str:
        return f"console:{self.email}"


# ---------------------------------------------------------------- keys
def session_key(config: ConsoleConfig) -> bytes:
    """The HMAC key, read once per process (its root) from Secrets Manager."""
    return root.current().once(("console-session-key", config.secret_arn), lambda: _read_session_key(config))


def _read_session_key(config: ConsoleConfig) -> bytes:
    import boto3

    value = boto3.client("secretsmanager", region_name=config.region).get_secret_value(SecretId=config.secret_arn)
    return key_from_secret(value["SecretString"])


def key_from_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _sign(key: bytes, purpose: str, data: bytes) -> str:
    return _b64(hmac.new(key, purpose.encode() + b"|" + data, hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(key: bytes, session: dict[str, Any]) -> str:
    body = json.dumps(session, separators=(",", ":"), sort_keys=True).encode()
    return f"{_b64(body)}.{_sign(key, 'session', body)}"


def unseal(key: bytes, value: str) -> dict[str, Any]:
    body_text, _, signature = value.partition(".")
    try:
        body = _unb64(body_text)
    except (ValueError, TypeError):
        raise SessionRefused("cookie is not base64") from None
    if not signature or not hmac.compare_digest(signature, _sign(key, "session", body)):
        raise SessionRefused("cookie seal does not match")
    data = json.loads(body)
    if not isinstance(data, dict):
        raise SessionRefused("cookie is not an object")
    return data


# ---------------------------------------------------------------- Cognito's tokens
class _Jwks:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sets: dict[str, tuple[float, Any]] = {}

    def key_set(self, url: str, *, refresh: bool = False) -> Any:
        from joserfc.jwk import KeySet

        with self._lock:
            cached = self._sets.get(url)
            if cached and (not refresh or time.monotonic() - cached[0] < JWKS_REFRESH_SECONDS):
                return cached[1]
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310  (https, or the local AWS)
                keys = KeySet.import_key_set(json.loads(response.read()))
            self._sets[url] = (time.monotonic(), keys)
            return keys


_jwks = _Jwks()


def verify_id_token(config: ConsoleConfig, token: str, *, now: float | None = None) -> dict[str, Any]:
    """The ID token's claims, or SessionRefused: RS256 with a key of the pool's JWKS, our pool's issuer,
    our app client as audience, ``token_use`` = id, not expired."""
    from joserfc import jws, jwt
    from joserfc.errors import InvalidKeyIdError, JoseError

    now = time.time() if now is None else now
    try:
        header = jws.extract_compact(token.encode()).protected
    except (JoseError, ValueError) as exc:
        raise SessionRefused(f"token is not a JWT: {type(exc).__name__}") from None
    if header.get("alg") != "RS256":
        raise SessionRefused("token is not RS256")
    try:
        keys = _jwks.key_set(config.jwks_url)
        try:
            decoded = jwt.decode(token, keys, algorithms=["RS256"])
        except InvalidKeyIdError:  # a key id the cached set lacks: Cognito rotated its keys
            decoded = jwt.decode(token, _jwks.key_set(config.jwks_url, refresh=True), algorithms=["RS256"])
    except (JoseError, ValueError) as exc:
        raise SessionRefused(f"token signature: {type(exc).__name__}") from None
    claims = dict(decoded.claims)
    if claims.get("iss") != config.issuer:
        raise SessionRefused("token from another user pool")
    audience = claims.get("aud")
    if audience != config.client_id and not (isinstance(audience, list) and config.client_id in audience):
        raise SessionRefused("token for another app client")
    if claims.get("token_use") != "id":
        raise SessionRefused("not an ID token")
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] <= now:
        raise SessionRefused("token expired")
    if not claims.get("email"):
        raise SessionRefused("token without an e-mail")
    return claims


# ---------------------------------------------------------------- sessions
def new_session(config: ConsoleConfig, id_token: str, *, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    verify_id_token(config, id_token, now=now)
    return {"t": id_token, "s": int(now), "a": int(now), "n": secrets.token_urlsafe(16)}


def open_session(config: ConsoleConfig, key: bytes, cookie: str | None, *, now: float | None = None) -> Person:
    """The person behind a session cookie, or SessionRefused (expired, idle, forged, another pool ...)."""
    now = time.time() if now is None else now
    if not cookie:
        raise SessionRefused("no session cookie")
    session = unseal(key, cookie)
    started, active = session.get("s"), session.get("a")
    if not isinstance(started, int) or not isinstance(active, int) or not isinstance(session.get("t"), str):
        raise SessionRefused("cookie lacks its fields")
    if now - active > config.idle_minutes * 60:
        raise SessionRefused("idle timeout")
    if now - started > config.session_hours * 3600:
        raise SessionRefused("absolute timeout")
    claims = verify_id_token(config, session["t"], now=now)
    groups = claims.get("cognito:groups") or []
    if not isinstance(groups, list):
        groups = [str(groups)]
    return Person(email=str(claims["email"]).lower(), groups=tuple(str(g) for g in groups), session=session)


def touched(session: dict[str, Any], *, now: float | None = None) -> dict[str, Any] | None:
    """The session with a new last-active time, when it is due to be re-sealed (else None)."""
    now = time.time() if now is None else now
    if now - int(session["a"]) < TOUCH_EVERY_SECONDS:
        return None
    return {**session, "a": int(now)}


def csrf_token(key: bytes, nonce: str) -> str:
    return _sign(key, "csrf", nonce.encode())


def csrf_ok(key: bytes, nonce: str | None, submitted: str | None) -> bool:
    return bool(nonce) and bool(submitted) and hmac.compare_digest(csrf_token(key, str(nonce)), str(submitted))


def login_nonce(key: bytes, cookie: str | None) -> str | None:
    """The login form's nonce from its signed cookie (None when missing or forged)."""
    if not cookie:
        return None
    nonce, _, signature = cookie.partition(".")
    return nonce if signature and hmac.compare_digest(signature, _sign(key, "login", nonce.encode())) else None


def new_login_cookie(key: bytes) -> tuple[str, str]:
    """(cookie value, nonce) for a login form."""
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_sign(key, 'login', nonce.encode())}", nonce


def seal_challenge(key: bytes, data: dict[str, str]) -> str:
    body = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return f"{_b64(body)}.{_sign(key, 'challenge', body)}"


def unseal_challenge(key: bytes, value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    body_text, _, signature = value.partition(".")
    try:
        body = _unb64(body_text)
    except (ValueError, TypeError):
        return None
    if not signature or not hmac.compare_digest(signature, _sign(key, "challenge", body)):
        return None
    data = json.loads(body)
    return data if isinstance(data, dict) else None


def cookie_header(name: str, value: str, *, secure: bool, max_age: int | None = None) -> str:
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


def secure_cookies(config: ConsoleConfig, scheme: str) -> bool:
    """Secure everywhere, except the local stage reached over plain http (make dev)."""
    return not (config.stage == "local" and scheme == "http")


# ---------------------------------------------------------------- Cognito sign-in
def _idp(config: ConsoleConfig) -> Any:
    import boto3

    return boto3.client("cognito-idp", region_name=config.region)


@dataclass(frozen=True)
class SignIn:
    """Either tokens (signed in) or a challenge to answer next (``new_password`` or ``mfa``)."""

    id_token: str = ""
    challenge: str = ""
    challenge_session: str = ""


_CHALLENGES = {"NEW_PASSWORD_REQUIRED": "new_password", "SOFTWARE_TOKEN_MFA": "mfa"}


def _outcome(answer: dict[str, Any]) -> SignIn:
    result = answer.get("AuthenticationResult") or {}
    if result.get("IdToken"):
        return SignIn(id_token=str(result["IdToken"]))
    name = str(answer.get("ChallengeName") or "")
    if name in _CHALLENGES:
        return SignIn(challenge=_CHALLENGES[name], challenge_session=str(answer.get("Session") or ""))
    raise SignInFailed("This account needs a sign-in step the console does not offer; ask an admin.")


def _refusal(exc: Exception) -> SignInFailed:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    if code in ("NotAuthorizedException", "UserNotFoundException"):
        return SignInFailed("The e-mail or the password is not right.")
    if code == "CodeMismatchException":
        return SignInFailed("That code is not right; use the newest code of your authenticator app.", field="code")
    if code == "InvalidPasswordException":
        return SignInFailed(
            "That password is too weak: at least 12 characters, with upper- and lower-case letters and a digit.",
            field="new_password",
        )
    if code in ("TooManyRequestsException", "LimitExceededException", "PasswordResetRequiredException"):
        return SignInFailed("Too many attempts, or a password reset is pending; wait a minute or ask an admin.")
    raise exc


def sign_in(config: ConsoleConfig, email: str, password: str) -> SignIn:
    from botocore.exceptions import ClientError

    try:
        answer = _idp(config).initiate_auth(
            ClientId=config.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": email, "PASSWORD": password},
        )
    except ClientError as exc:
        raise _refusal(exc) from None
    return _outcome(answer)


def answer_challenge(config: ConsoleConfig, challenge: dict[str, str], answer: str) -> SignIn:
    from botocore.exceptions import ClientError

    name = {"new_password": "NEW_PASSWORD_REQUIRED", "mfa": "SOFTWARE_TOKEN_MFA"}[challenge["kind"]]
    responses = {"USERNAME": challenge["email"]}
    responses["NEW_PASSWORD" if name == "NEW_PASSWORD_REQUIRED" else "SOFTWARE_TOKEN_MFA_CODE"] = answer
    try:
        result = _idp(config).respond_to_auth_challenge(
            ClientId=config.client_id, ChallengeName=name, Session=challenge["session"], ChallengeResponses=responses
        )
    except ClientError as exc:
        raise _refusal(exc) from None
    return _outcome(result)


# ---------------------------------------------------------------- people (admins)
def list_people(config: ConsoleConfig) -> list[dict[str, str]]:
    """Everyone in the console's groups: one ListUsersInGroup per group (three calls), at most 60 each."""
    idp = _idp(config)
    people: dict[str, dict[str, str]] = {}
    for group in RIGHTS:
        answer = idp.list_users_in_group(UserPoolId=config.user_pool_id, GroupName=group, Limit=60)
        for user in answer.get("Users", []):
            attributes = {a["Name"]: a["Value"] for a in user.get("Attributes", [])}
            email = attributes.get("email", user.get("Username", ""))
            known = people.setdefault(email, {"email": email, "groups": "", "status": str(user.get("UserStatus", ""))})
            known["groups"] = ", ".join(g for g in (known["groups"], group) if g)
    return sorted(people.values(), key=lambda p: p["email"])


def add_person(config: ConsoleConfig, email: str, group: str) -> str:
    """A new user in ``group``; Cognito e-mails a temporary password (a new password at first sign-in).
    An existing user is only added to the group."""
    from botocore.exceptions import ClientError

    idp = _idp(config)
    try:
        idp.admin_create_user(
            UserPoolId=config.user_pool_id,
            Username=email,
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
            DesiredDeliveryMediums=["EMAIL"],
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "UsernameExistsException":
            from invoicing.errors import ValidationFailed

            raise ValidationFailed(
                exc.response.get("Error", {}).get("Message", "Cognito refused this user"), details={"field": "email"}
            ) from None
    idp.admin_add_user_to_group(UserPoolId=config.user_pool_id, Username=email, GroupName=group)
    return email
