//! The auth logic, once: register, login, refresh, logout, change password,
//! sessions and activity. Server functions (browsers) and the JSON API
//! (scripts, apps) are thin adapters over this; neither has its own idea of
//! tokens, sessions or passwords.
//!
//! One file per capability: `credentials` (accounts and passwords),
//! `refresh` (rotation and reuse detection), `logout`, `devices` (the
//! session list and activity), `recovery` (reset links by email), `addresses` (confirming and
//! changing the address), `notices` (security mail), `second_factor` (TOTP and recovery
//! codes), with [`Throttle`] and [`Audit`] as parts they share. New ways to prove who someone is (an emailed reset link, a TOTP
//! code, a passkey) plug in at the same seams:
//! - [`AuthService::start_session`] is the only way a session begins, so
//!   rotation, logout, revocation and the device list apply to every
//!   sign-in method unchanged;
//! - [`AuthService::confirm_password`] is the re-authentication that
//!   sensitive actions ask for;
//! - [`Throttle`] keys any secret a person types, [`Audit`] records what
//!   happened, and `Passwords` hashes every secret stored.

mod addresses;
mod admin;
mod audit;
mod credentials;
mod devices;
mod logout;
mod notices;
mod passkeys;
mod recovery;
mod refresh;
mod second_factor;
mod throttle;

pub use addresses::EmailChanged;
pub use admin::{Actor, Admin, MAX_LIST, UserRef, UserSessions};
pub(crate) use audit::Audit;
pub use logout::{LogoutCredentials, SessionRef};
pub use passkeys::{CeremonyStart, MAX_PASSKEY_NAME};
pub use recovery::RecoverySettings;
pub use second_factor::{
    PENDING_SIGN_IN_ATTEMPTS, PENDING_SIGN_IN_TTL, PendingSignIn, SETUP_TTL, SignIn, TotpSetup,
};
pub(crate) use throttle::Throttle;

use super::{
    client::ClientInfo,
    config::{SessionSettings, ThrottleSettings},
    db::{
        EventKind, MfaStatus, NewSession, RefreshTokenRecord, SessionId, Store, UserId, UserRecord,
    },
    error::AuthError,
    mfa::SecondFactors,
    passwords::{HashFailure, Passwords},
    time::Timestamp,
    tokens::{RefreshToken, TokenIssuer, new_rotation_key},
};

/// A signed-in identity: what a verified access token plus a live session
/// row amount to.
#[derive(Clone, Debug)]
pub struct Principal {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub email: String,
    /// Whether the address was confirmed through an emailed link.
    pub email_verified: bool,
    /// Last time the password was proven on this device.
    pub authenticated_at: Timestamp,
}

/// What the per-request check of an access token found: who, and the
/// account's second factors, read in the same query.
#[derive(Clone, Debug)]
pub struct Checked {
    pub principal: Principal,
    pub second_factors: MfaStatus,
}

/// Tokens just issued for a session, with who they are for.
pub struct Issued {
    pub principal: Principal,
    pub access_token: String,
    pub access_expires_at: Timestamp,
    pub refresh_token: RefreshToken,
    pub refresh_expires_at: Timestamp,
    /// A device cookie to set (after a password sign-in; see
    /// `TokenIssuer::issue_device`).
    pub device_cookie: Option<String>,
}

pub struct AuthService {
    store: Store,
    tokens: TokenIssuer,
    passwords: Passwords,
    sessions: SessionSettings,
    throttle: Throttle,
    audit: Audit,
    recovery: RecoverySettings,
    factors: SecondFactors,
    /// The WebAuthn relying party (see `server::passkeys`).
    passkeys: webauthn_rs::Webauthn,
}

/// The ways to prove who someone is beyond the password, each with its keys
/// or configuration.
pub struct SignInMethods {
    pub totp: SecondFactors,
    pub passkeys: webauthn_rs::Webauthn,
}

impl AuthService {
    pub fn new(
        store: Store,
        tokens: TokenIssuer,
        passwords: Passwords,
        sessions: SessionSettings,
        throttle: ThrottleSettings,
        recovery: RecoverySettings,
        methods: SignInMethods,
    ) -> Self {
        AuthService {
            recovery,
            factors: methods.totp,
            passkeys: methods.passkeys,
            throttle: Throttle::new(store.clone(), throttle),
            audit: Audit::new(store.clone()),
            store,
            tokens,
            passwords,
            sessions,
        }
    }

    pub fn passwords(&self) -> &Passwords {
        &self.passwords
    }

    pub fn tokens(&self) -> &TokenIssuer {
        &self.tokens
    }

    /// A hashing result as the caller sees it. Shed load is audited (counted,
    /// never with the password) and answered `Busy`; nothing else happens,
    /// in particular no failure is counted against any throttle.
    async fn hashed<T>(
        &self,
        result: Result<T, HashFailure>,
        client: &ClientInfo,
    ) -> Result<T, AuthError> {
        match result {
            Ok(value) => Ok(value),
            Err(failure) => {
                if matches!(failure, HashFailure::Busy { .. }) {
                    self.audit.shed(client).await;
                }
                Err(failure.into())
            }
        }
    }

    /// Verifies an access token and checks, in the database, that its session
    /// is still live: a logout anywhere takes effect on the next request.
    pub async fn authenticate(&self, access_token: &str) -> Result<Checked, AuthError> {
        let claims = self
            .tokens
            .verify_access(access_token)
            .map_err(AuthError::InvalidToken)?;
        let session = self
            .store
            .active_session(claims.sid, claims.sub, Timestamp::now())
            .await?
            .ok_or(AuthError::SessionEnded)?;
        Ok(Checked {
            principal: Principal {
                user_id: session.user_id,
                session_id: session.session_id,
                email: session.email,
                email_verified: session.email_verified,
                authenticated_at: session.authenticated_at,
            },
            second_factors: MfaStatus {
                totp: session.totp,
                recovery_codes_left: session.recovery_codes_left,
            },
        })
    }

    /// Starts a session for `user_id`: the only way one begins, whatever
    /// proved who the person is. `password_hash` is the hash that proof was
    /// checked against: the session is created only if it is still the
    /// user's, in the same statement, so a password change (or reset) that
    /// committed meanwhile wins (`PasswordChangedMeanwhile`), and one that
    /// commits later revokes this session like every other.
    pub(crate) async fn start_session(
        &self,
        user_id: UserId,
        email: String,
        email_verified: bool,
        password_hash: &str,
        client: &ClientInfo,
        now: Timestamp,
    ) -> Result<Issued, AuthError> {
        let session_id = SessionId::random();
        let rotation_key = new_rotation_key();
        let refresh_token = RefreshToken::generate(session_id);
        let expires_at = now.plus(self.sessions.refresh_ttl);
        let created = self
            .store
            .create_session(&NewSession {
                id: session_id,
                user_id,
                password_hash,
                rotation_key: &rotation_key,
                first_token_hash: &refresh_token.hash(),
                now,
                expires_at,
                user_agent: client.user_agent(),
                ip: client.ip(),
                access_expires_at: self.access_exp(now),
            })
            .await?;
        if !created {
            return Err(AuthError::PasswordChangedMeanwhile);
        }
        let (access_token, access_expires_at) =
            self.tokens.issue_access(user_id, session_id, now)?;
        Ok(Issued {
            principal: Principal {
                user_id,
                session_id,
                email,
                email_verified,
                authenticated_at: now,
            },
            access_token,
            access_expires_at,
            refresh_token,
            refresh_expires_at: expires_at,
            device_cookie: None,
        })
    }

    /// The end of every sign-in that proved who someone is (a password, a
    /// second factor, a passkey): the session (checked against
    /// `password_hash`, see `start_session`), the device cookie, the audit
    /// event naming `method`, and the new-device notice.
    pub(super) async fn signed_in_by(
        &self,
        user: &UserRecord,
        password_hash: &str,
        method: Option<&str>,
        client: &ClientInfo,
        now: Timestamp,
    ) -> Result<Issued, AuthError> {
        if user.disabled {
            return Err(AuthError::AccountDisabled);
        }
        let mut issued = self
            .start_session(
                user.id,
                user.email.clone(),
                user.email_verified,
                password_hash,
                client,
                now,
            )
            .await?;
        issued.device_cookie = Some(
            self.tokens
                .issue_device(&credentials::account_key(&user.email)),
        );
        self.audit
            .of(
                EventKind::LoginSucceeded,
                Some(&issued.principal),
                client,
                method,
            )
            .await;
        self.notice_new_device(&issued.principal, client, now).await;
        Ok(issued)
    }

    /// The `exp` (Unix seconds) of an access token issued at `now`.
    pub(super) fn access_exp(&self, now: Timestamp) -> i64 {
        now.plus(self.tokens.access_ttl()).unix_seconds()
    }

    fn issue(
        &self,
        record: &RefreshTokenRecord,
        refresh_token: RefreshToken,
        now: Timestamp,
    ) -> Result<Issued, AuthError> {
        let (access_token, access_expires_at) =
            self.tokens
                .issue_access(record.user_id, record.session_id, now)?;
        Ok(Issued {
            principal: principal_of(record),
            access_token,
            access_expires_at,
            refresh_token,
            refresh_expires_at: record.expires_at,
            device_cookie: None,
        })
    }
}

fn principal_of(record: &RefreshTokenRecord) -> Principal {
    Principal {
        user_id: record.user_id,
        session_id: record.session_id,
        email: record.email.clone(),
        email_verified: record.email_verified,
        authenticated_at: record.authenticated_at,
    }
}
