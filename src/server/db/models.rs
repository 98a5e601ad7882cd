//! Rows as they come out of the database. Server-only: some hold secrets
//! (password hashes, rotation keys), and none is ever sent to a client.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

use crate::server::time::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(transparent)]
#[serde(transparent)]
pub struct UserId(pub Uuid);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[sqlx(transparent)]
#[serde(transparent)]
pub struct SessionId(pub Uuid);

impl UserId {
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl SessionId {
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A user with the password hash: deliberately neither `Serialize` nor
/// printable with `{:?}` beyond its id.
#[derive(Clone, sqlx::FromRow)]
pub struct UserRecord {
    pub id: UserId,
    pub email: String,
    pub password_hash: String,
    pub email_verified: bool,
    /// Disabled by an operator: no sign-in, refresh or recovery.
    pub disabled: bool,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

pub struct NewUser<'a> {
    pub id: UserId,
    pub email: &'a str,
    pub email_normalized: &'a str,
    pub password_hash: &'a str,
    pub now: Timestamp,
}

pub struct NewSession<'a> {
    pub id: SessionId,
    pub user_id: UserId,
    /// The hash the sign-in was checked against; the session is created
    /// only if it is still the user's.
    pub password_hash: &'a str,
    pub rotation_key: &'a [u8],
    pub first_token_hash: &'a [u8],
    pub now: Timestamp,
    pub expires_at: Timestamp,
    pub user_agent: Option<&'a str>,
    pub ip: Option<&'a str>,
    /// The `exp` (Unix seconds) of the access token issued with it.
    pub access_expires_at: i64,
}

/// The identity behind a live access token: what the per-request revocation
/// check returns, with the account's second factors (read in the same query,
/// so `GET /auth/me` needs no other).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ActiveSession {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub email: String,
    pub email_verified: bool,
    pub authenticated_at: Timestamp,
    pub totp: bool,
    pub recovery_codes_left: i64,
}

/// A refresh token's row joined with its session.
#[derive(Clone, sqlx::FromRow)]
pub struct RefreshTokenRecord {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub email: String,
    pub email_verified: bool,
    pub generation: i64,
    pub retired_at: Option<Timestamp>,
    pub rotation_key: Vec<u8>,
    pub authenticated_at: Timestamp,
    pub last_used_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl fmt::Debug for RefreshTokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshTokenRecord")
            .field("session_id", &self.session_id)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// A session as listed to its owner.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SessionRecord {
    pub id: SessionId,
    pub created_at: Timestamp,
    pub last_used_at: Timestamp,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

/// Why a session ended; stored in `sessions.revoked_reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevokeReason {
    Logout,
    LogoutOthers,
    LogoutEverywhere,
    PasswordChanged,
    RevokedByUser,
    RefreshTokenReuse,
    IdleTimeout,
    PasswordReset,
    EmailChanged,
    /// An operator signed the user out, or disabled the account.
    Admin,
    /// The account's owner turned two-factor sign-in off.
    MfaDisabled,
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeReason::Logout => "logout",
            RevokeReason::LogoutOthers => "logout_others",
            RevokeReason::LogoutEverywhere => "logout_everywhere",
            RevokeReason::PasswordChanged => "password_changed",
            RevokeReason::RevokedByUser => "revoked_by_user",
            RevokeReason::RefreshTokenReuse => "refresh_token_reuse",
            RevokeReason::IdleTimeout => "idle_timeout",
            RevokeReason::PasswordReset => "password_reset",
            RevokeReason::EmailChanged => "email_changed",
            RevokeReason::Admin => "admin",
            RevokeReason::MfaDisabled => "mfa_disabled",
        }
    }
}

/// An audit event kind; stored in `auth_events.kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Registered,
    LoginSucceeded,
    LoginFailed,
    Logout,
    TokenRefreshed,
    RefreshTokenReuseDetected,
    PasswordChanged,
    SessionRevoked,
    /// Password checks refused because the hashing pool was saturated; the
    /// detail carries how many since the previous such event.
    LoadShed,
    /// A registration refused (the address is taken); throttled ones are
    /// recorded as `ThrottleLocked`, once per lock.
    RegistrationRefused,
    /// A throttle key locked: one event per lock, with the attempts counted,
    /// however many attempts the lock then refuses.
    ThrottleLocked,
    /// Someone asked for a password-reset link; the detail says whether one
    /// was sent (`sent`, `no_account`, `throttled`), never the address.
    PasswordResetRequested,
    /// A password was reset through a link; every session ended.
    PasswordReset,
    /// A verification link was mailed (at registration, or asked for again);
    /// the detail says `sent` or `throttled`.
    VerificationSent,
    /// The account's address was confirmed through its link.
    EmailVerified,
    /// A change of address was asked for; the detail says `sent`,
    /// `address_in_use` or `throttled`, never the address.
    EmailChangeRequested,
    /// The address was changed through the link sent to the new one; every
    /// other session ended.
    EmailChanged,
    /// A security notice went out about a sign-in from a kind of device the
    /// account had not used before.
    NewDeviceSignIn,
    /// An operator ended every session of the user; the detail names the
    /// actor (`cli`, or the API key's name).
    AdminSignOut,
    /// An operator disabled the account (every session ended).
    AccountDisabled,
    /// An operator enabled the account again.
    AccountEnabled,
    /// An operator erased a user: the one row left, naming neither the
    /// user's id nor their address, only the actor.
    UserDeleted,
    /// An admin API key was created or revoked; the detail names it.
    ApiKeyCreated,
    ApiKeyRevoked,
    /// A right password for an account with a second factor: a pending
    /// sign-in waits for its code.
    SecondFactorRequired,
    /// A wrong, replayed or malformed code at a second step or a sensitive
    /// action; never the code.
    SecondFactorFailed,
    /// An authenticator app was confirmed: two-factor sign-in is on.
    TotpEnabled,
    /// Two-factor sign-in was turned off; every other session ended.
    TotpDisabled,
    /// A recovery code was used; the detail says how many are left.
    RecoveryCodeUsed,
    /// New recovery codes replaced the old ones.
    RecoveryCodesRegenerated,
    /// A passkey was added; the detail names it.
    PasskeyAdded,
    /// A passkey was removed; the detail names it.
    PasskeyRemoved,
}

impl EventKind {
    pub const ALL: [EventKind; 32] = [
        EventKind::Registered,
        EventKind::LoginSucceeded,
        EventKind::LoginFailed,
        EventKind::Logout,
        EventKind::TokenRefreshed,
        EventKind::RefreshTokenReuseDetected,
        EventKind::PasswordChanged,
        EventKind::SessionRevoked,
        EventKind::LoadShed,
        EventKind::RegistrationRefused,
        EventKind::ThrottleLocked,
        EventKind::PasswordResetRequested,
        EventKind::PasswordReset,
        EventKind::VerificationSent,
        EventKind::EmailVerified,
        EventKind::EmailChangeRequested,
        EventKind::EmailChanged,
        EventKind::NewDeviceSignIn,
        EventKind::AdminSignOut,
        EventKind::AccountDisabled,
        EventKind::AccountEnabled,
        EventKind::UserDeleted,
        EventKind::ApiKeyCreated,
        EventKind::ApiKeyRevoked,
        EventKind::SecondFactorRequired,
        EventKind::SecondFactorFailed,
        EventKind::TotpEnabled,
        EventKind::TotpDisabled,
        EventKind::RecoveryCodeUsed,
        EventKind::RecoveryCodesRegenerated,
        EventKind::PasskeyAdded,
        EventKind::PasskeyRemoved,
    ];

    /// The kind a stored name stands for; `None` for a name this version does
    /// not know (written by a newer one).
    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Registered => "registered",
            EventKind::LoginSucceeded => "login_succeeded",
            EventKind::LoginFailed => "login_failed",
            EventKind::Logout => "logout",
            EventKind::TokenRefreshed => "token_refreshed",
            EventKind::RefreshTokenReuseDetected => "refresh_token_reuse_detected",
            EventKind::PasswordChanged => "password_changed",
            EventKind::SessionRevoked => "session_revoked",
            EventKind::LoadShed => "load_shed",
            EventKind::RegistrationRefused => "registration_refused",
            EventKind::ThrottleLocked => "throttle_locked",
            EventKind::PasswordResetRequested => "password_reset_requested",
            EventKind::PasswordReset => "password_reset",
            EventKind::VerificationSent => "verification_sent",
            EventKind::EmailVerified => "email_verified",
            EventKind::EmailChangeRequested => "email_change_requested",
            EventKind::EmailChanged => "email_changed",
            EventKind::NewDeviceSignIn => "new_device_sign_in",
            EventKind::AdminSignOut => "admin_sign_out",
            EventKind::AccountDisabled => "account_disabled",
            EventKind::AccountEnabled => "account_enabled",
            EventKind::UserDeleted => "user_deleted",
            EventKind::ApiKeyCreated => "api_key_created",
            EventKind::ApiKeyRevoked => "api_key_revoked",
            EventKind::SecondFactorRequired => "second_factor_required",
            EventKind::SecondFactorFailed => "second_factor_failed",
            EventKind::TotpEnabled => "totp_enabled",
            EventKind::TotpDisabled => "totp_disabled",
            EventKind::RecoveryCodeUsed => "recovery_code_used",
            EventKind::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            EventKind::PasskeyAdded => "passkey_added",
            EventKind::PasskeyRemoved => "passkey_removed",
        }
    }
}

pub struct NewEvent<'a> {
    pub kind: EventKind,
    pub user_id: Option<UserId>,
    pub session_id: Option<SessionId>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub now: Timestamp,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EventRecord {
    pub occurred_at: Timestamp,
    pub kind: String,
    pub session_id: Option<SessionId>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_kind_round_trips_through_its_stored_name() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("from_a_newer_version"), None);
    }
}
