"""Schemathesis hooks for the contract test (scripts/contract, #17 item 8).

- FreshUser signs every /admin/v1 request in with the admin API key, and
  every other request with a bearer token of a freshly
  registered user, and registers a new one after any operation that may end
  its session (a logout, revoking a session), so the signed-in operations are
  exercised for the whole run instead of answering 401 after the first logout.
- semantic_refusals_only narrows the one allowance made in contract.toml: an
  operation that sets or checks a password may refuse schema-valid data with
  422, but only for what no JSON Schema can say (strength, equality with the
  confirmation, the current password being right, a length that NFKC
  normalisation changes). Any other 422 to valid data is a contract failure.
- unknown_links_only: a password reset, an email verification or an email
  change confirmation may refuse schema-valid data with 400, but only as
  `invalid_token` (no schema can know which tokens were mailed).
"""

import os
import unicodedata
import uuid

import requests
import schemathesis

BASE_URL = os.environ["PORTCULLIS_CONTRACT_URL"]
# The admin API's key (scripts/contract creates it with `portcullis admin api-key create`).
ADMIN_KEY = os.environ["PORTCULLIS_CONTRACT_ADMIN_KEY"]
# Operations after which the token handed out may be dead.
SESSION_ENDING = {("POST", "/auth/logout"), ("DELETE", "/auth/logout"), ("DELETE", "/auth/sessions/{id}")}


@schemathesis.auth(refresh_interval=None)
class FreshUser:
    def __init__(self):
        self.token = None

    def get(self, case, ctx):
        if case.operation.path.startswith("/admin/"):
            return ADMIN_KEY
        if self.token is None:
            self.token = register()
        token = self.token
        if (case.method.upper(), case.operation.path) in SESSION_ENDING:
            self.token = None
        return token

    def set(self, case, data, ctx):
        case.headers = dict(case.headers or {})
        case.headers["Authorization"] = f"Bearer {data}"


def register():
    """A new account, signed in, its access token (never printed)."""
    email = f"contract-{uuid.uuid4().hex}@example.com"
    password = "violet kettle anthem 42"
    response = requests.post(
        f"{BASE_URL}/auth/register",
        json={"email": email, "password": password},
        timeout=30,
    )
    if response.status_code != 202:
        raise RuntimeError(f"registering the contract user failed: {response.status_code} {response.text}")
    response = requests.post(
        f"{BASE_URL}/auth/login",
        json={"email": email, "password": password, "token_delivery": "body"},
        timeout=30,
    )
    if response.status_code != 200:
        raise RuntimeError(f"signing the contract user in failed: {response.status_code} {response.text}")
    return response.json()["tokens"]["access_token"]


# Per operation: the password fields and the 422 codes that no schema can
# rule out. `invalid_input` on a password field is allowed only when NFKC
# normalisation (which the server applies first) moves its length out of the
# documented limits.
SEMANTIC_422 = {
    ("POST", "/auth/register"): (
        {"password", "password_confirm"},
        {"weak_password", "password_mismatch"},
    ),
    ("PUT", "/auth/password"): (
        {"current_password", "new_password", "new_password_confirm"},
        {"weak_password", "password_mismatch", "invalid_current_password", "same_password"},
    ),
    ("DELETE", "/auth/sessions/{id}"): ({"password"}, {"invalid_current_password"}),
    ("POST", "/auth/password/reset"): (
        {"password", "password_confirm"},
        {"weak_password", "password_mismatch"},
    ),
    ("POST", "/auth/email/change"): ({"password"}, {"invalid_current_password"}),
    ("POST", "/auth/login/mfa"): (set(), {"invalid_code"}),
    ("POST", "/auth/mfa/totp/setup"): ({"password"}, {"invalid_current_password"}),
    ("POST", "/auth/mfa/totp/enable"): (set(), {"invalid_code"}),
    ("POST", "/auth/mfa/totp/disable"): ({"password"}, {"invalid_code", "invalid_current_password"}),
    ("POST", "/auth/mfa/recovery-codes"): ({"password"}, {"invalid_code", "invalid_current_password"}),
    ("POST", "/auth/passkeys/register/finish"): (set(), {"invalid_input"}),
    ("POST", "/auth/passkeys/login/finish"): (set(), {"invalid_input"}),
    ("DELETE", "/auth/passkeys/{id}"): ({"password"}, {"invalid_current_password"}),
}

# Operations that may refuse schema-valid data with 400, and the one code
# that may say so: a reset token of the documented shape that no mail ever
# carried (or one used, superseded or expired) is refused as `invalid_token`.
SEMANTIC_400 = {
    ("POST", "/auth/password/reset"): "invalid_token",
    ("POST", "/auth/email/verify"): "invalid_token",
    ("POST", "/auth/email/change/confirm"): "invalid_token",
}


@schemathesis.check
def unknown_links_only(ctx, response, case):
    expected = SEMANTIC_400.get((case.method.upper(), case.operation.path))
    meta = case.meta
    if expected is None or response.status_code != 400 or meta is None or not meta.generation.mode.is_positive:
        return None
    code = response.json().get("code")
    if code != expected:
        raise AssertionError(f"Schema-valid data refused with 400 `{code}`; only `{expected}` may be")
    return None


@schemathesis.check
def semantic_refusals_only(ctx, response, case):
    rule = SEMANTIC_422.get((case.method.upper(), case.operation.path))
    meta = case.meta
    if rule is None or response.status_code != 422 or meta is None or not meta.generation.mode.is_positive:
        return None
    fields, codes = rule
    body = response.json()
    code, field = body.get("code"), body.get("field")
    if code in codes:
        return None
    if code == "invalid_input" and field in fields and length_changed_by_nfkc(case, field):
        return None
    raise AssertionError(
        f"Schema-valid data refused with 422 `{code}` on field `{field}`: "
        "the schema should have ruled this request out"
    )


def length_changed_by_nfkc(case, field):
    value = case.body.get(field) if isinstance(case.body, dict) else None
    if not isinstance(value, str):
        return False
    return len(unicodedata.normalize("NFKC", value)) != len(value)
