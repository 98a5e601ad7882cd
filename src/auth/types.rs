//! Types shared by the server and the browser. None of them holds a secret:
//! password hashes and tokens live in server-only types (`server::db`).

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

/// The signed-in person as the browser sees them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    pub id: String,
    pub email: String,
    /// Whether the address was confirmed through its emailed link.
    pub email_verified: bool,
}

/// What the browser knows about its own sign-in state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthStatus {
    SignedIn(SessionUser),
    /// No credentials at all.
    SignedOut,
    /// Credentials were presented, but their session was ended elsewhere
    /// (another device, a password change, an expiry or a theft response).
    SessionEnded,
}

impl AuthStatus {
    pub fn user(&self) -> Option<&SessionUser> {
        match self {
            AuthStatus::SignedIn(user) => Some(user),
            _ => None,
        }
    }
}

/// Which sessions a logout ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogoutScope {
    /// This device only.
    #[default]
    Local,
    /// Every session of the user except this one.
    Others,
    /// Every session of the user, this one included.
    Global,
}

impl LogoutScope {
    pub fn as_str(self) -> &'static str {
        match self {
            LogoutScope::Local => "local",
            LogoutScope::Others => "others",
            LogoutScope::Global => "global",
        }
    }

    /// Whether this scope ends the session that asked for it.
    pub fn ends_current(self) -> bool {
        self != LogoutScope::Others
    }
}

impl fmt::Display for LogoutScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogoutScope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(LogoutScope::Local),
            "others" => Ok(LogoutScope::Others),
            "global" => Ok(LogoutScope::Global),
            other => Err(format!(
                "Unknown logout scope {other:?}; use local, others or global."
            )),
        }
    }
}

/// A point in time, formatted on the server so the page hydrates with
/// exactly the text it was rendered with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moment {
    /// RFC 3339, for `<time datetime>`.
    pub iso: String,
    /// Human form, in UTC.
    pub display: String,
}

/// One signed-in device, as listed on the account page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSession {
    pub id: String,
    pub device: String,
    pub ip: Option<String>,
    pub created: Moment,
    pub last_used: Moment,
    pub current: bool,
}

/// The account page's session list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionsOverview {
    pub sessions: Vec<DeviceSession>,
    /// True when revoking a session needs the password re-entered, because
    /// the last sign-in on this device is not recent enough.
    pub reauth_required: bool,
}

/// One line of the account's recent activity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityEntry {
    pub description: String,
    pub at: Moment,
    pub ip: Option<String>,
    pub device: Option<String>,
}

/// The password rules this server enforces, for the forms' hints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordLimits {
    pub min_chars: usize,
    pub max_chars: usize,
}

/// Where a right password leads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignInStep {
    /// Signed in.
    Done(SessionUser),
    /// The account has two-factor sign-in: `/login/verify` is next. No
    /// session exists yet.
    SecondFactor,
}

/// The account page's two-factor section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwoFactorOverview {
    pub totp: bool,
    pub recovery_codes_left: i64,
    /// An authenticator app being set up, not yet confirmed.
    pub setup: Option<TotpSetupView>,
    /// Whether starting a set-up needs the password (no recent sign-in).
    pub reauth_required: bool,
}

/// What a person needs to add the account to an authenticator app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpSetupView {
    /// The secret in base32, grouped in fours for typing.
    pub secret: String,
    /// The `otpauth://` URI as an SVG QR code, drawn by the server.
    pub qr_svg: String,
}
