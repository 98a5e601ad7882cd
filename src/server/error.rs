//! Server-side errors and their one mapping to the wire.
//!
//! [`AuthError`] variants are the failures a caller can act on, plus
//! `Unavailable` and `Unexpected` for faults. [`AuthError::to_app_error`] is
//! the only place that decides what a client is told; the full cause chain is
//! logged there, once, inside the request's span.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use super::{
    db::StoreError,
    passwords::{HashFailure, PasswordProblem},
    tokens::TokenError,
};
use crate::auth::{AppError, ErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("invalid credentials")]
    InvalidCredentials,
    /// An email change confirmed after another account took the address.
    #[error("email already registered")]
    EmailTaken,
    /// The right password, for an unconfirmed address, while confirmation
    /// is required.
    #[error("email address not verified")]
    EmailNotVerified,
    #[error("password refused ({field}): {problem}")]
    PasswordRefused {
        field: &'static str,
        problem: PasswordProblem,
    },
    #[error("new password equals the current one")]
    SamePassword,
    #[error("current password is wrong")]
    WrongCurrentPassword,
    #[error("not signed in")]
    Unauthenticated,
    #[error("session has ended")]
    SessionEnded,
    /// A just-retired refresh token whose successor cannot be adopted (it was
    /// replaced by a password change). Not theft, and not worth a logout.
    #[error("refresh token was superseded")]
    RefreshSuperseded,
    #[error("invalid token: {0}")]
    InvalidToken(TokenError),
    /// The password a sign-in was checked against changed before its
    /// session could be created.
    #[error("the password changed while signing in")]
    PasswordChangedMeanwhile,
    /// An emailed link (password reset) that is malformed, unknown, used,
    /// superseded or expired: which of them is not said.
    #[error("invalid or expired link")]
    InvalidLink,
    #[error("fresh authentication required")]
    ReauthRequired,
    /// The password was right; the account's second factor is next.
    #[error("second factor required")]
    MfaRequired,
    /// A second-factor code that is wrong, already used, or not a code.
    #[error("invalid second-factor code")]
    InvalidCode,
    /// A pending sign-in that is unknown, spent, expired or out of attempts.
    #[error("pending sign-in expired")]
    SignInExpired,
    #[error("two-factor sign-in is on already")]
    TotpAlreadyEnabled,
    #[error("two-factor sign-in is not on")]
    TotpNotEnabled,
    /// A passkey prompt (a WebAuthn ceremony) that is unknown, was answered
    /// already, or expired.
    #[error("WebAuthn ceremony expired")]
    CeremonyExpired,
    /// A passkey sign-in that did not verify, or whose passkey is not (or no
    /// longer) registered.
    #[error("passkey refused")]
    PasskeyRefused,
    #[error("passkey registered already")]
    PasskeyExists,
    #[error("no such passkey")]
    UnknownPasskey,
    /// Confirming an authenticator app that was not set up, or whose set-up
    /// expired.
    #[error("no authenticator app is being set up")]
    TotpSetupRequired,
    #[error("not found")]
    NotFound,
    /// An operator named an address that has no account.
    #[error("no such user")]
    UnknownUser,
    /// The right password, for an account an operator disabled.
    #[error("account disabled")]
    AccountDisabled,
    /// No session event is kept under that id.
    #[error("no such event")]
    UnknownEvent,
    /// No live admin API key has that name.
    #[error("no such API key")]
    UnknownApiKey,
    /// A missing, malformed, unknown or revoked admin API key: which, is
    /// not said.
    #[error("admin API key refused")]
    BadAdminKey,
    #[error("throttled for {retry_after:?}")]
    Throttled { retry_after: Duration },
    /// The account holds as many live-sign-out streams as it may.
    #[error("too many event streams")]
    TooManyStreams { limit: usize },
    /// The password hashing pool shed this request: nothing was done.
    #[error("shed under load; retry in {retry_after:?}")]
    Busy { retry_after: Duration },
    /// The database cannot be reached now (503, retryable).
    #[error("database unavailable: {0}")]
    Unavailable(Fault),
    #[error("unexpected error: {0}")]
    Unexpected(Fault),
}

/// A fault with its whole cause chain, logged exactly once however many
/// times it is cloned and passed on (the session middleware keeps it for the
/// handler that finally answers).
#[derive(Clone)]
pub struct Fault {
    cause: Arc<anyhow::Error>,
    logged: Arc<AtomicBool>,
}

impl Fault {
    pub fn new(cause: impl Into<anyhow::Error>) -> Fault {
        Fault {
            cause: Arc::new(cause.into()),
            logged: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Logs the fault with its full chain, unless that was done already.
    pub fn log_once(&self, message: &'static str) {
        if !self.logged.swap(true, Ordering::AcqRel) {
            tracing::error!(error = ?self.cause, "{message}");
        }
    }
}

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.cause, f)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.cause)
    }
}

impl From<StoreError> for AuthError {
    /// Storage classified the failure already (`db::StoreError`).
    fn from(error: StoreError) -> Self {
        if error.is_unavailable() {
            AuthError::Unavailable(Fault::new(error))
        } else {
            AuthError::Unexpected(Fault::new(error))
        }
    }
}

impl From<anyhow::Error> for AuthError {
    /// Anything else that fails (signing a token, say) is a real fault.
    fn from(error: anyhow::Error) -> Self {
        AuthError::Unexpected(Fault::new(error))
    }
}

impl From<HashFailure> for AuthError {
    fn from(failure: HashFailure) -> Self {
        match failure {
            HashFailure::Busy { retry_after } => AuthError::Busy { retry_after },
            HashFailure::Failed(cause) => AuthError::Unexpected(Fault::new(cause)),
        }
    }
}

impl AuthError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        AuthError::Invalid {
            field,
            message: message.into(),
        }
    }

    pub fn password(field: &'static str, problem: PasswordProblem) -> Self {
        AuthError::PasswordRefused { field, problem }
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, AuthError::Unavailable(_))
    }

    /// What the client is told. Logs faults with their full chain.
    pub fn to_app_error(&self) -> AppError {
        use ErrorCode as C;
        match self {
            AuthError::Invalid { field, message } => {
                AppError::new(C::InvalidInput, message).on_field(*field)
            }
            AuthError::InvalidCredentials | AuthError::PasswordChangedMeanwhile => {
                AppError::new(C::InvalidCredentials, "Incorrect email or password.")
            }
            AuthError::EmailTaken => AppError::new(
                C::EmailTaken,
                "Another account took this address meanwhile; your address is unchanged.",
            )
            .on_field("token"),
            AuthError::EmailNotVerified => AppError::new(
                C::EmailNotVerified,
                "Confirm your email address first: follow the link we sent you. \
                 We can send a new one.",
            )
            .on_field("email"),
            AuthError::PasswordRefused { field, problem } => {
                let code = match problem {
                    PasswordProblem::Mismatch => C::PasswordMismatch,
                    PasswordProblem::Weak(_) => C::WeakPassword,
                    _ => C::InvalidInput,
                };
                AppError::new(code, problem.to_string()).on_field(*field)
            }
            AuthError::SamePassword => AppError::new(
                C::SamePassword,
                "The new password must be different from the current one.",
            )
            .on_field("new_password"),
            AuthError::WrongCurrentPassword => AppError::new(
                C::InvalidCurrentPassword,
                "The current password is not correct.",
            )
            .on_field("current_password"),
            AuthError::Unauthenticated => AppError::new(C::Unauthenticated, "Please sign in."),
            AuthError::SessionEnded | AuthError::RefreshSuperseded => {
                AppError::new(C::SessionEnded, "Your session ended. Please sign in again.")
            }
            AuthError::InvalidToken(_) => AppError::new(C::InvalidToken, "Invalid token"),
            AuthError::InvalidLink => AppError::new(
                C::InvalidToken,
                "This link is invalid or has expired. Request a new one.",
            )
            .on_field("token"),
            AuthError::ReauthRequired => AppError::new(
                C::ReauthRequired,
                "Enter your password to confirm this action.",
            )
            .on_field("password"),
            AuthError::MfaRequired => AppError::new(
                C::MfaRequired,
                "Enter the code from your authenticator app to finish signing in.",
            ),
            AuthError::InvalidCode => AppError::new(
                C::InvalidCode,
                "That code is not right, or was used already. Enter the current code from \
                 your authenticator app, or an unused recovery code.",
            )
            .on_field("code"),
            AuthError::SignInExpired => AppError::new(
                C::MfaExpired,
                "This sign-in has expired. Sign in again with your password.",
            ),
            AuthError::TotpAlreadyEnabled => AppError::new(
                C::MfaAlreadyEnabled,
                "Two-factor sign-in is on already. Turn it off first to use another app.",
            ),
            AuthError::TotpNotEnabled => AppError::new(
                C::MfaNotEnabled,
                "Two-factor sign-in is not on for this account.",
            ),
            AuthError::TotpSetupRequired => AppError::new(
                C::MfaSetupRequired,
                "Start setting up the authenticator app again: the set-up expired or was not started.",
            ),
            AuthError::CeremonyExpired => AppError::new(
                C::CeremonyExpired,
                "This passkey prompt expired or was answered already. Try again.",
            ),
            AuthError::PasskeyRefused => AppError::new(
                C::PasskeyRefused,
                "This passkey could not sign you in: it is not registered here, or was removed. \
                 Sign in with your password.",
            ),
            AuthError::PasskeyExists => {
                AppError::new(C::PasskeyExists, "This passkey is registered already.")
            }
            AuthError::UnknownPasskey => AppError::new(C::NotFound, "No such passkey."),
            AuthError::NotFound => AppError::new(C::NotFound, "No such session."),
            AuthError::UnknownUser => AppError::new(C::NotFound, "No such user."),
            AuthError::UnknownApiKey => AppError::new(C::NotFound, "No such API key."),
            AuthError::UnknownEvent => AppError::new(C::NotFound, "No such event."),
            AuthError::BadAdminKey => AppError::new(
                C::Unauthenticated,
                "A valid admin API key is required: Authorization: Bearer <key>.",
            ),
            AuthError::AccountDisabled => AppError::new(
                C::AccountDisabled,
                "This account is disabled. Contact the service's support.",
            ),
            AuthError::Throttled { retry_after } => {
                let seconds = whole_seconds(*retry_after);
                AppError {
                    retry_after: Some(seconds),
                    ..AppError::new(
                        C::Throttled,
                        format!(
                            "Too many attempts. Try again in {}.",
                            human_seconds(seconds)
                        ),
                    )
                }
            }
            AuthError::TooManyStreams { limit } => AppError {
                retry_after: Some(30),
                ..AppError::new(
                    C::TooManyStreams,
                    format!(
                        "This account already has {limit} pages listening for sign-out; \
                         close some and try again."
                    ),
                )
            },
            AuthError::Busy { retry_after } => AppError {
                retry_after: Some(whole_seconds(*retry_after)),
                ..AppError::new(
                    C::Busy,
                    "Too many sign-ins right now. Try again in a moment.",
                )
            },
            AuthError::Unavailable(fault) => {
                fault.log_once("database unavailable");
                AppError::new(
                    C::Unavailable,
                    "The service is temporarily unavailable. Please try again shortly.",
                )
            }
            AuthError::Unexpected(fault) => {
                fault.log_once("unexpected error");
                AppError::new(C::Internal, "Something went wrong on our side.")
            }
        }
    }
}

/// Rounded up: retrying after a rounded-down wait would be refused.
fn whole_seconds(wait: Duration) -> u64 {
    u64::try_from(wait.as_millis().div_ceil(1000))
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Why a logout did not succeed. The browser's cookies are cleared either way
/// (by the transport, before asking).
#[derive(Debug)]
pub enum LogoutFailure {
    /// An explicit bearer token that is malformed or not ours.
    InvalidBearer,
    /// `others` or `global` without a live session: the error's own 401.
    NotSignedIn(AuthError),
    /// The database failed: the seed contract's 500 `Error logging out`.
    Failed(AuthError),
}

impl From<AuthError> for LogoutFailure {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::SessionEnded | AuthError::Unauthenticated => {
                LogoutFailure::NotSignedIn(error)
            }
            other => LogoutFailure::Failed(other),
        }
    }
}

impl LogoutFailure {
    /// What the client is told; a failure is logged here, once.
    pub fn to_app_error(&self) -> AppError {
        match self {
            LogoutFailure::InvalidBearer => AppError::new(ErrorCode::InvalidToken, "Invalid token"),
            LogoutFailure::NotSignedIn(error) => error.to_app_error(),
            LogoutFailure::Failed(error) => {
                match error {
                    AuthError::Unavailable(fault) | AuthError::Unexpected(fault) => {
                        fault.log_once("logout failed")
                    }
                    other => tracing::error!(error = ?other, "logout failed"),
                }
                AppError::new(ErrorCode::LogoutFailed, "Error logging out")
            }
        }
    }

    /// The status of the answer: the logout contract answers an unreadable
    /// explicit token with 400, not the 401 its code usually means.
    pub fn status(&self) -> StatusCode {
        match self {
            LogoutFailure::InvalidBearer => StatusCode::BAD_REQUEST,
            LogoutFailure::NotSignedIn(_) => StatusCode::UNAUTHORIZED,
            LogoutFailure::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for LogoutFailure {
    fn into_response(self) -> Response {
        let status = self.status();
        error_response(self.to_app_error(), status)
    }
}

fn human_seconds(seconds: u64) -> String {
    match seconds {
        1 => "1 second".into(),
        s if s < 120 => format!("{s} seconds"),
        s => format!("{} minutes", s.div_ceil(60)),
    }
}

/// The JSON API's error response, with the status its code implies. Never
/// cached.
impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        error_response(self, status)
    }
}

/// An error response with an explicit status: for the one documented
/// contract (logout with an unreadable token) whose status differs from its
/// code's usual one.
pub fn error_response(error: AppError, status: StatusCode) -> Response {
    let retry_after = error.retry_after;
    let mut response = (status, Json(error)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(seconds) = retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

impl IntoResponse for AuthError {
    /// The JSON API's answer: the status its code implies, except for an
    /// emailed link, which is not a credential of the request and so is a
    /// 400, not the 401 that `invalid_token` means for a bearer token.
    fn into_response(self) -> Response {
        match self {
            AuthError::InvalidLink => error_response(self.to_app_error(), StatusCode::BAD_REQUEST),
            other => other.to_app_error().into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::db::StoreError;

    #[test]
    fn a_storage_fault_keeps_its_real_cause_and_is_logged_once() {
        let store = StoreError::Unavailable {
            action: "Failed to check a session",
            source: Box::new(sqlx::Error::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            ))),
        };
        let error = AuthError::from(store);
        let AuthError::Unavailable(fault) = &error else {
            panic!("unavailable storage is AuthError::Unavailable: {error:?}");
        };
        let text = format!("{fault:?}");
        assert!(text.contains("Failed to check a session"), "{text}");
        assert!(text.contains("connection refused"), "{text}");
        assert!(!fault.logged.load(Ordering::Acquire));
        let copy = fault.clone();
        copy.log_once("first");
        assert!(
            fault.logged.load(Ordering::Acquire),
            "clones share the flag"
        );
        assert_eq!(error.to_app_error().code, ErrorCode::Unavailable);
    }
}
