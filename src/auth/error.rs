//! The one error type that crosses the wire.
//!
//! Server functions and the JSON API both answer with [`AppError`], so a
//! browser, a script and a test all see the same `{"error", "code"}` body.
//! It carries only messages that are safe to show; the rich cause stays in
//! the server's log (see `server::error`).

use serde::{Deserialize, Serialize};
use server_fn::{
    ServerFnError,
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use std::fmt;

/// A stable, machine-readable error code. Clients branch on this, never on
/// the message, so renaming a variant is a breaking change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request could not be parsed at all (bad JSON, bad form encoding).
    MalformedRequest,
    /// A field is missing, has the wrong type or fails validation.
    InvalidInput,
    UnsupportedMediaType,
    PayloadTooLarge,
    HeadersTooLarge,
    /// The request body did not arrive in time (a slow or stalled client).
    RequestTimeout,
    NotFound,
    MethodNotAllowed,
    /// Email or password is wrong; deliberately says which of them nobody knows.
    InvalidCredentials,
    /// The right password, for an account whose address is not confirmed,
    /// while `PORTCULLIS_REQUIRE_VERIFIED_EMAIL` is on.
    EmailNotVerified,
    /// The right password, for an account an operator disabled.
    AccountDisabled,
    /// An email change confirmed after another account took the address.
    EmailTaken,
    WeakPassword,
    PasswordMismatch,
    SamePassword,
    InvalidCurrentPassword,
    /// No credentials were presented.
    Unauthenticated,
    /// Credentials were presented but their session is over (logged out,
    /// revoked elsewhere, expired, or stolen and replayed).
    SessionEnded,
    /// An explicitly presented token is malformed or not ours.
    InvalidToken,
    /// The action needs the password re-entered or a recent sign-in.
    ReauthRequired,
    /// The password was right; the second factor is next
    /// (`POST /auth/login/mfa`). No session exists yet.
    MfaRequired,
    /// A second-factor code that is wrong, used already, or not a code.
    InvalidCode,
    /// The pending sign-in is unknown, expired, spent or out of attempts.
    MfaExpired,
    MfaAlreadyEnabled,
    MfaNotEnabled,
    /// Confirming an authenticator app that is not being set up.
    MfaSetupRequired,
    /// A passkey prompt that expired or was answered already.
    CeremonyExpired,
    /// A passkey sign-in that did not verify, or an unknown passkey.
    PasskeyRefused,
    PasskeyExists,
    /// A cross-site request was refused.
    CrossSiteRequest,
    Throttled,
    /// An account holds as many live-sign-out streams as it may.
    TooManyStreams,
    /// Too much password hashing at once: shed, nothing done; retry shortly.
    Busy,
    LogoutFailed,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The HTTP status for this code: the single mapping used by the JSON
    /// API and by the server-function layer.
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            MalformedRequest => 400,
            // RFC 6750: a bearer token that is not accepted is a 401. (The
            // logout endpoint answers 400 instead, per its documented contract.)
            Unauthenticated | SessionEnded | InvalidCredentials | InvalidToken | MfaRequired
            | MfaExpired | PasskeyRefused => 401,
            ReauthRequired | CrossSiteRequest | EmailNotVerified | AccountDisabled => 403,
            NotFound => 404,
            MethodNotAllowed => 405,
            RequestTimeout => 408,
            EmailTaken | MfaAlreadyEnabled | MfaNotEnabled | MfaSetupRequired | CeremonyExpired
            | PasskeyExists => 409,
            PayloadTooLarge => 413,
            UnsupportedMediaType => 415,
            InvalidInput
            | WeakPassword
            | PasswordMismatch
            | SamePassword
            | InvalidCurrentPassword
            | InvalidCode => 422,
            Throttled | TooManyStreams => 429,
            HeadersTooLarge => 431,
            LogoutFailed | Internal => 500,
            Unavailable | Busy => 503,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            MalformedRequest => "malformed_request",
            InvalidInput => "invalid_input",
            UnsupportedMediaType => "unsupported_media_type",
            PayloadTooLarge => "payload_too_large",
            HeadersTooLarge => "headers_too_large",
            RequestTimeout => "request_timeout",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            InvalidCredentials => "invalid_credentials",
            EmailNotVerified => "email_not_verified",
            AccountDisabled => "account_disabled",
            EmailTaken => "email_taken",
            WeakPassword => "weak_password",
            PasswordMismatch => "password_mismatch",
            SamePassword => "same_password",
            InvalidCurrentPassword => "invalid_current_password",
            Unauthenticated => "unauthenticated",
            SessionEnded => "session_ended",
            InvalidToken => "invalid_token",
            ReauthRequired => "reauth_required",
            MfaRequired => "mfa_required",
            InvalidCode => "invalid_code",
            MfaExpired => "mfa_expired",
            MfaAlreadyEnabled => "mfa_already_enabled",
            MfaNotEnabled => "mfa_not_enabled",
            MfaSetupRequired => "mfa_setup_required",
            CeremonyExpired => "ceremony_expired",
            PasskeyRefused => "passkey_refused",
            PasskeyExists => "passkey_exists",
            CrossSiteRequest => "cross_site_request",
            Throttled => "throttled",
            TooManyStreams => "too_many_streams",
            Busy => "busy",
            LogoutFailed => "logout_failed",
            Unavailable => "unavailable",
            Internal => "internal",
        }
    }

    /// True when the error means "you are not signed in (any more)".
    pub fn ends_session(self) -> bool {
        matches!(self, ErrorCode::SessionEnded | ErrorCode::Unauthenticated)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The wire error: `{"error": "...", "code": "...", "field"?: "...", "retry_after"?: n}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    #[serde(rename = "error")]
    pub message: String,
    pub code: ErrorCode,
    /// The form field the error is about, so the UI can show it in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds until a throttled or shed request may be retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code,
            field: None,
            retry_after: None,
        }
    }

    pub fn on_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The message for `field`, if this error is about that field.
    pub fn message_for(&self, field: &str) -> Option<String> {
        (self.field.as_deref() == Some(field)).then(|| self.message.clone())
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    /// Errors raised by the server-function machinery itself, before or after
    /// our code runs: undecodable arguments, a network failure in the browser.
    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::Deserialization(_) => AppError::new(
                ErrorCode::MalformedRequest,
                "The request could not be understood. Check the fields and try again.",
            ),
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Response(_) => AppError::new(
                ErrorCode::Unavailable,
                "Could not reach the server. Check your connection and try again.",
            ),
            ServerFnErrorErr::UnsupportedRequestMethod(_) => AppError::new(
                ErrorCode::MethodNotAllowed,
                "This method is not allowed here.",
            ),
            _ => AppError::new(ErrorCode::Internal, "Something went wrong on our side."),
        }
    }
}

impl From<ServerFnError> for AppError {
    fn from(_: ServerFnError) -> Self {
        AppError::new(ErrorCode::Internal, "Something went wrong on our side.")
    }
}
