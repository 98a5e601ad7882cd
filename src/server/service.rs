//! The auth logic, once: register, login, refresh, logout, change password,
//! sessions and activity. Server functions (browsers) and the JSON API
//! (scripts, apps) are thin adapters over this; neither has its own idea of
//! tokens, sessions or passwords.

use super::{
    client::{ClientInfo, describe_device},
    config::{SessionSettings, ThrottleSettings},
    cookies::CookieCredentials,
    db::{
        EventKind, EventRecord, NewEvent, NewSession, NewUser, RefreshTokenRecord, RevokeReason,
        SessionId, SessionRecord, Store, UserId,
        sessions::{PasswordChange, Rotation},
    },
    error::AuthError,
    passwords::{HashFailure, Password, Passwords},
    time::Timestamp,
    tokens::{AccessClaims, RefreshToken, TokenError, TokenIssuer, new_rotation_key},
};
use crate::auth::LogoutScope;
use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// How many successors a retired token may be behind the live one and still
/// be adopted inside the grace window (a burst of tabs refreshing at once).
const MAX_ADOPTION_STEPS: usize = 4;

/// Shed password checks are audited at most this often, with their count,
/// so that a storm cannot turn into a storm of audit rows.
const SHED_AUDIT_INTERVAL: Duration = Duration::from_secs(10);

/// Longest email address (RFC 5321 path limit).
const MAX_EMAIL_LEN: usize = 254;

/// A signed-in identity: what a verified access token plus a live session
/// row amount to.
#[derive(Clone, Debug)]
pub struct Principal {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub email: String,
    /// Last time the password was proven on this device.
    pub authenticated_at: Timestamp,
}

/// Tokens just issued for a session, with who they are for.
pub struct Issued {
    pub principal: Principal,
    pub access_token: String,
    pub access_expires_at: Timestamp,
    pub refresh_token: RefreshToken,
    pub refresh_expires_at: Timestamp,
}

/// What a logout request carried, as the transport found it. Read before the
/// cookies are cleared: afterwards the jar answers with the removal cookies.
pub struct LogoutCredentials<'a> {
    /// The `Authorization` header, if any: a bearer token, or `Err` when the
    /// header is not a usable bearer token.
    pub bearer: Option<Result<&'a str, TokenError>>,
    pub cookies: &'a CookieCredentials,
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

/// The session a logout request names, found from whichever credential it
/// carried. A signature-checked but expired access token still counts.
#[derive(Clone, Copy, Debug)]
pub struct SessionRef {
    pub session_id: SessionId,
    pub user_id: UserId,
}

impl From<&AccessClaims> for SessionRef {
    fn from(claims: &AccessClaims) -> Self {
        SessionRef {
            session_id: claims.sid,
            user_id: claims.sub,
        }
    }
}

/// An email address as the account identity: trimmed for display, lower-cased
/// for uniqueness and lookup.
struct Email {
    display: String,
    normalized: String,
}

impl Email {
    fn parse(raw: &str) -> Result<Email, AuthError> {
        let display = raw.trim();
        if display.is_empty() {
            return Err(AuthError::invalid("email", "Enter your email address."));
        }
        if display.chars().count() > MAX_EMAIL_LEN {
            return Err(AuthError::invalid(
                "email",
                "That email address is too long.",
            ));
        }
        if display.chars().any(char::is_control) || !email_address::EmailAddress::is_valid(display)
        {
            return Err(AuthError::invalid(
                "email",
                "Enter a valid email address, like name@example.com.",
            ));
        }
        Ok(Email {
            display: display.to_string(),
            normalized: display.to_lowercase(),
        })
    }

    fn hints(&self) -> Vec<String> {
        password_hints(&self.normalized)
    }
}

/// Words zxcvbn should treat as guessable for the owner of `email`: the
/// address, its local part and the longer parts of its domain.
fn password_hints(email: &str) -> Vec<String> {
    let email = email.to_lowercase();
    let mut hints = vec![email.clone()];
    if let Some((local, domain)) = email.split_once('@') {
        hints.push(local.to_string());
        hints.extend(
            domain
                .split('.')
                .filter(|p| p.len() > 2)
                .map(str::to_string),
        );
    }
    hints
}

pub struct AuthService {
    store: Store,
    tokens: TokenIssuer,
    passwords: Passwords,
    sessions: SessionSettings,
    throttle: ThrottleSettings,
    shed: ShedTally,
}

/// Counts shed password checks between two `load_shed` audit events.
#[derive(Default)]
struct ShedTally {
    pending: AtomicU64,
    last_recorded: Mutex<Option<Instant>>,
}

impl ShedTally {
    /// Counts one; returns the count to record now, if an event is due.
    fn count(&self) -> Option<u64> {
        self.pending.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last_recorded.lock().ok()?;
        let due = last.is_none_or(|at| at.elapsed() >= SHED_AUDIT_INTERVAL);
        if !due {
            return None;
        }
        *last = Some(Instant::now());
        Some(self.pending.swap(0, Ordering::Relaxed))
    }
}

impl AuthService {
    pub fn new(
        store: Store,
        tokens: TokenIssuer,
        passwords: Passwords,
        sessions: SessionSettings,
        throttle: ThrottleSettings,
    ) -> Self {
        AuthService {
            store,
            tokens,
            passwords,
            sessions,
            throttle,
            shed: ShedTally::default(),
        }
    }

    pub fn passwords(&self) -> &Passwords {
        &self.passwords
    }

    /// A hashing result as the caller sees it. Shed load is audited (counted,
    /// never with the password) and answered `Busy`; nothing else happens,
    /// in particular no failure is counted against any throttle.
    async fn hashed<T>(
        &self,
        result: Result<T, HashFailure>,
        client: &ClientInfo,
    ) -> Result<T, AuthError> {
        let failure = match result {
            Ok(value) => return Ok(value),
            Err(failure) => failure,
        };
        if matches!(failure, HashFailure::Busy { .. })
            && let Some(count) = self.shed.count()
        {
            tracing::warn!(count, "password checks shed: the hashing pool is saturated");
            let detail = format!("{count} password checks shed");
            self.record(
                EventKind::LoadShed,
                None,
                None,
                client,
                Some(&detail),
                Timestamp::now(),
            )
            .await;
        }
        Err(failure.into())
    }

    pub fn tokens(&self) -> &TokenIssuer {
        &self.tokens
    }

    /// Creates an account and signs it in on this device.
    pub async fn register(
        &self,
        email: &str,
        password: &Password,
        confirmation: &Password,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        let email = Email::parse(email)?;
        self.passwords
            .check_new(password, confirmation, email.hints())
            .await
            .map_err(|problem| {
                AuthError::password(
                    password_field(&problem, "password", "password_confirm"),
                    problem,
                )
            })?;
        let hash = self
            .hashed(self.passwords.hash(password).await, client)
            .await?;
        let now = Timestamp::now();
        let user_id = UserId::random();
        let inserted = self
            .store
            .insert_user(&NewUser {
                id: user_id,
                email: &email.display,
                email_normalized: &email.normalized,
                password_hash: &hash,
                now,
            })
            .await?;
        if !inserted {
            return Err(AuthError::EmailTaken);
        }
        let issued = self
            .start_session(user_id, email.display, client, now)
            .await?;
        self.audit(EventKind::Registered, Some(&issued.principal), client, None)
            .await;
        Ok(issued)
    }

    /// Checks credentials and starts a session.
    ///
    /// Unknown email and wrong password take the same path (a full argon2
    /// verification, against a dummy hash when there is no account), the same
    /// throttling, and the same answer.
    pub async fn login(
        &self,
        email: &str,
        password: &Password,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        let email = Email::parse(email)?;
        self.passwords
            .check_length(password)
            .map_err(|problem| AuthError::password("password", problem))?;
        let now = Timestamp::now();
        let keys = self.throttle_keys(&email, client);
        if let Some(until) = self.store.throttled_until(&key_refs(&keys), now).await? {
            self.audit_login_failure(None, client, "throttled", &email, now)
                .await;
            return Err(AuthError::Throttled {
                retry_after: now.until(until),
            });
        }
        let user = self.store.find_user_by_email(&email.normalized).await?;
        let verification = self
            .passwords
            .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
            .await;
        let verification = self.hashed(verification, client).await?;
        let user = match user {
            Some(user) if verification.matches => user,
            other => {
                self.record_failures(&keys, now).await?;
                let reason = if other.is_some() {
                    "wrong_password"
                } else {
                    "unknown_email"
                };
                self.audit_login_failure(other.map(|u| u.id), client, reason, &email, now)
                    .await;
                return Err(AuthError::InvalidCredentials);
            }
        };
        if verification.needs_rehash {
            self.upgrade_hash(user.id, &user.password_hash, password)
                .await;
        }
        self.store.clear_login_failures(&keys[0].0).await?;
        let issued = self.start_session(user.id, user.email, client, now).await?;
        self.audit(
            EventKind::LoginSucceeded,
            Some(&issued.principal),
            client,
            None,
        )
        .await;
        Ok(issued)
    }

    /// Verifies an access token and checks, in the database, that its session
    /// is still live: a logout anywhere takes effect on the next request.
    pub async fn authenticate(&self, access_token: &str) -> Result<Principal, AuthError> {
        let claims = self
            .tokens
            .verify_access(access_token)
            .map_err(AuthError::InvalidToken)?;
        let session = self
            .store
            .active_session(claims.sid, claims.sub, Timestamp::now())
            .await?
            .ok_or(AuthError::SessionEnded)?;
        Ok(Principal {
            user_id: session.user_id,
            session_id: session.session_id,
            email: session.email,
            authenticated_at: session.authenticated_at,
        })
    }

    /// Exchanges a refresh token for a new access token and the token's
    /// successor, retiring it.
    ///
    /// A retired token presented again inside the grace window is answered
    /// with the current successor (a second tab refreshing at the same
    /// moment). Outside the window it can only be a copy, so the whole session
    /// is revoked: the thief and the victim both have to sign in again, and
    /// the thief cannot.
    pub async fn refresh(&self, raw: &str, client: &ClientInfo) -> Result<Issued, AuthError> {
        let presented = RefreshToken::parse(raw).ok_or(AuthError::SessionEnded)?;
        let now = Timestamp::now();
        let record = self
            .store
            .find_refresh_token(&presented.hash())
            .await?
            .ok_or(AuthError::SessionEnded)?;
        if record.revoked_at.is_some() || record.expires_at <= now {
            return Err(AuthError::SessionEnded);
        }
        if let Some(idle) = self.sessions.idle_timeout
            && record.last_used_at.plus(idle) <= now
        {
            self.store
                .revoke_session(record.session_id, RevokeReason::IdleTimeout, now)
                .await?;
            return Err(AuthError::SessionEnded);
        }
        if record.retired_at.is_none() {
            let successor = presented.successor(&record.rotation_key);
            let rotated = self
                .store
                .rotate_refresh_token(&Rotation {
                    session_id: record.session_id,
                    old_hash: &presented.hash(),
                    new_hash: &successor.hash(),
                    new_generation: record.generation + 1,
                    now,
                    ip: client.ip(),
                    user_agent: client.user_agent(),
                })
                .await?;
            if rotated {
                let issued = self.issue(&record, successor, now)?;
                self.audit(
                    EventKind::TokenRefreshed,
                    Some(&issued.principal),
                    client,
                    None,
                )
                .await;
                return Ok(issued);
            }
            // Another request rotated it a moment ago: adopt its result.
            return self
                .adopt_successor(&presented, &record, now, now, client)
                .await;
        }
        let retired_at = record.retired_at.unwrap_or(now);
        self.adopt_successor(&presented, &record, retired_at, now, client)
            .await
    }

    async fn adopt_successor(
        &self,
        presented: &RefreshToken,
        record: &RefreshTokenRecord,
        retired_at: Timestamp,
        now: Timestamp,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        let principal = principal_of(record);
        if retired_at.until(now) > self.sessions.refresh_grace {
            let revoked = self
                .store
                .revoke_session(record.session_id, RevokeReason::RefreshTokenReuse, now)
                .await?;
            if revoked {
                tracing::warn!(session = %record.session_id, "retired refresh token replayed; session revoked");
                self.audit(
                    EventKind::RefreshTokenReuseDetected,
                    Some(&principal),
                    client,
                    None,
                )
                .await;
            }
            return Err(AuthError::SessionEnded);
        }
        let mut candidate = presented.successor(&record.rotation_key);
        for _ in 0..MAX_ADOPTION_STEPS {
            let Some(next) = self.store.find_refresh_token(&candidate.hash()).await? else {
                break;
            };
            if next.revoked_at.is_some() {
                return Err(AuthError::SessionEnded);
            }
            match next.retired_at {
                None => return self.issue(&next, candidate, now),
                Some(at) if at.until(now) <= self.sessions.refresh_grace => {
                    candidate = candidate.successor(&record.rotation_key);
                }
                Some(_) => break,
            }
        }
        Err(AuthError::RefreshSuperseded)
    }

    /// Logs out with whatever credentials the request carried: an explicit
    /// bearer token alone when there is one, else the access cookie, else the
    /// refresh cookie. `Local` ends that session and always succeeds when
    /// the database answers (nothing to end is fine: logout is idempotent).
    /// Returns how many sessions were ended.
    pub async fn end_session(
        &self,
        credentials: LogoutCredentials<'_>,
        scope: LogoutScope,
        client: &ClientInfo,
    ) -> Result<u64, LogoutFailure> {
        let target = match credentials.bearer {
            Some(bearer) => {
                let claims = bearer
                    .and_then(|token| self.tokens.verify_access_ignoring_expiry(token))
                    .map_err(|_| LogoutFailure::InvalidBearer)?;
                Some(SessionRef::from(&claims))
            }
            None => self
                .session_for_logout(
                    credentials.cookies.access.as_deref(),
                    credentials.cookies.refresh.as_deref(),
                )
                .await
                .map_err(LogoutFailure::from)?,
        };
        self.logout(target, scope, client)
            .await
            .map_err(LogoutFailure::from)
    }

    /// Finds the session a logout names. Prefers the access token (its
    /// signature is checked, its expiry is not: an expired token still proves
    /// which session to end), then the refresh token. `None` when neither
    /// names a session we know: logout is then a no-op that still succeeds.
    async fn session_for_logout(
        &self,
        access: Option<&str>,
        refresh: Option<&str>,
    ) -> Result<Option<SessionRef>, AuthError> {
        if let Some(claims) = access.and_then(|t| self.tokens.verify_access_ignoring_expiry(t).ok())
        {
            return Ok(Some(SessionRef::from(&claims)));
        }
        let Some(token) = refresh.and_then(RefreshToken::parse) else {
            return Ok(None);
        };
        Ok(self
            .store
            .find_refresh_token(&token.hash())
            .await?
            .map(|r| SessionRef {
                session_id: r.session_id,
                user_id: r.user_id,
            }))
    }

    /// Ends sessions. `Local` ends `target` and is idempotent: an already
    /// ended or unknown session is fine. `Others` and `Global` reach other
    /// devices, so they need `target` to be a live session.
    async fn logout(
        &self,
        target: Option<SessionRef>,
        scope: LogoutScope,
        client: &ClientInfo,
    ) -> Result<u64, AuthError> {
        let now = Timestamp::now();
        let Some(target) = target else {
            return match scope {
                LogoutScope::Local => Ok(0),
                _ => Err(AuthError::Unauthenticated),
            };
        };
        let ended = match scope {
            LogoutScope::Local => u64::from(
                self.store
                    .revoke_session(target.session_id, RevokeReason::Logout, now)
                    .await?,
            ),
            LogoutScope::Others | LogoutScope::Global => {
                self.store
                    .active_session(target.session_id, target.user_id, now)
                    .await?
                    .ok_or(AuthError::SessionEnded)?;
                let (keep, reason) = match scope {
                    LogoutScope::Others => (Some(target.session_id), RevokeReason::LogoutOthers),
                    _ => (None, RevokeReason::LogoutEverywhere),
                };
                self.store
                    .revoke_user_sessions(target.user_id, keep, reason, now)
                    .await?
            }
        };
        if ended > 0 || scope != LogoutScope::Local {
            self.record(
                EventKind::Logout,
                Some(target.user_id),
                Some(target.session_id),
                client,
                Some(scope.as_str()),
                now,
            )
            .await;
        }
        Ok(ended)
    }

    /// Changes the password after checking the current one, ends every other
    /// session of the user, and gives this session fresh tokens.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &Password,
        new: &Password,
        confirmation: &Password,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        self.passwords
            .check_length(current)
            .map_err(|problem| AuthError::password("current_password", problem))?;
        self.passwords
            .check_new(new, confirmation, password_hints(&principal.email))
            .await
            .map_err(|problem| {
                AuthError::password(
                    password_field(&problem, "new_password", "new_password_confirm"),
                    problem,
                )
            })?;
        self.confirm_password(principal, current, client).await?;
        if new.same_as(current) {
            return Err(AuthError::SamePassword);
        }
        let hash = self.hashed(self.passwords.hash(new).await, client).await?;
        let refresh = RefreshToken::generate();
        let now = Timestamp::now();
        let session_expires_at = self
            .store
            .change_password(&PasswordChange {
                user_id: principal.user_id,
                current_session: principal.session_id,
                new_password_hash: &hash,
                new_token_hash: &refresh.hash(),
                now,
            })
            .await?
            .ok_or(AuthError::SessionEnded)?;
        let principal = Principal {
            authenticated_at: now,
            ..principal.clone()
        };
        self.audit(EventKind::PasswordChanged, Some(&principal), client, None)
            .await;
        let (access_token, access_expires_at) =
            self.tokens
                .issue_access(principal.user_id, principal.session_id, now)?;
        Ok(Issued {
            principal,
            access_token,
            access_expires_at,
            refresh_token: refresh,
            refresh_expires_at: session_expires_at,
        })
    }

    /// The user's live sessions, for the account page and `/auth/sessions`.
    pub async fn list_sessions(
        &self,
        principal: &Principal,
    ) -> Result<Vec<SessionRecord>, AuthError> {
        Ok(self
            .store
            .list_active_sessions(principal.user_id, Timestamp::now())
            .await?)
    }

    /// Whether sensitive actions need the password re-entered now.
    pub fn needs_reauthentication(&self, principal: &Principal) -> bool {
        Timestamp::now() > principal.authenticated_at.plus(self.sessions.reauth_window)
    }

    /// Ends one of the user's sessions, this one included. Needs a sign-in
    /// within the re-authentication window, or the password. Someone else's
    /// session is answered exactly like a session that does not exist.
    /// Returns whether the caller's own session was ended.
    pub async fn revoke_session(
        &self,
        principal: &Principal,
        target: SessionId,
        password: Option<&Password>,
        client: &ClientInfo,
    ) -> Result<bool, AuthError> {
        if self.needs_reauthentication(principal) {
            let password = password.ok_or(AuthError::ReauthRequired)?;
            self.passwords
                .check_length(password)
                .map_err(|_| AuthError::ReauthRequired)?;
            self.confirm_password(principal, password, client).await?;
            self.store
                .mark_reauthenticated(principal.session_id, Timestamp::now())
                .await?;
        }
        let now = Timestamp::now();
        let revoked = self
            .store
            .revoke_session_of_user(principal.user_id, target, RevokeReason::RevokedByUser, now)
            .await?;
        if !revoked {
            return Err(AuthError::NotFound);
        }
        let detail = format!("session {target}");
        self.record(
            EventKind::SessionRevoked,
            Some(principal.user_id),
            Some(principal.session_id),
            client,
            Some(&detail),
            now,
        )
        .await;
        Ok(target == principal.session_id)
    }

    pub async fn recent_events(
        &self,
        principal: &Principal,
        limit: i64,
    ) -> Result<Vec<EventRecord>, AuthError> {
        Ok(self.store.recent_events(principal.user_id, limit).await?)
    }

    /// Checks `password` against the user's current hash, throttled like a
    /// login so a stolen session cannot be used to guess the password.
    async fn confirm_password(
        &self,
        principal: &Principal,
        password: &Password,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let now = Timestamp::now();
        let key = account_key(&principal.email.to_lowercase());
        if let Some(until) = self.store.throttled_until(&[key.as_str()], now).await? {
            return Err(AuthError::Throttled {
                retry_after: now.until(until),
            });
        }
        let user = self
            .store
            .find_user(principal.user_id)
            .await?
            .ok_or(AuthError::SessionEnded)?;
        let verification = self
            .passwords
            .verify(password, Some(&user.password_hash))
            .await;
        let verification = self.hashed(verification, client).await?;
        if !verification.matches {
            self.record_failures(&[(key, self.throttle.account_max_failures)], now)
                .await?;
            return Err(AuthError::WrongCurrentPassword);
        }
        Ok(())
    }

    async fn start_session(
        &self,
        user_id: UserId,
        email: String,
        client: &ClientInfo,
        now: Timestamp,
    ) -> Result<Issued, AuthError> {
        let session_id = SessionId::random();
        let rotation_key = new_rotation_key();
        let refresh_token = RefreshToken::generate();
        let expires_at = now.plus(self.sessions.refresh_ttl);
        self.store
            .create_session(&NewSession {
                id: session_id,
                user_id,
                rotation_key: &rotation_key,
                first_token_hash: &refresh_token.hash(),
                now,
                expires_at,
                user_agent: client.user_agent(),
                ip: client.ip(),
            })
            .await?;
        let (access_token, access_expires_at) =
            self.tokens.issue_access(user_id, session_id, now)?;
        Ok(Issued {
            principal: Principal {
                user_id,
                session_id,
                email,
                authenticated_at: now,
            },
            access_token,
            access_expires_at,
            refresh_token,
            refresh_expires_at: expires_at,
        })
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
        })
    }

    /// Re-hashes with current parameters after a successful login. A failure
    /// here must not fail the login, so it is logged and dropped.
    async fn upgrade_hash(&self, user_id: UserId, old_hash: &str, password: &Password) {
        let result: anyhow::Result<()> = async {
            let new_hash = self.passwords.hash(password).await?;
            self.store
                .upgrade_password_hash(user_id, old_hash, &new_hash)
                .await?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                tracing::info!(user = %user_id, "password hash upgraded to current parameters")
            }
            Err(error) => {
                tracing::warn!(user = %user_id, error = ?error, "failed to upgrade a password hash")
            }
        }
    }

    fn throttle_keys(&self, email: &Email, client: &ClientInfo) -> Vec<(String, u32)> {
        let mut keys = vec![(
            account_key(&email.normalized),
            self.throttle.account_max_failures,
        )];
        if let Some(ip) = client.ip() {
            keys.push((format!("ip:{ip}"), self.throttle.ip_max_failures));
        }
        keys
    }

    /// Counts a failure against each key; a key over its limit is locked for
    /// `base * 2^(failures - limit)`, capped.
    async fn record_failures(
        &self,
        keys: &[(String, u32)],
        now: Timestamp,
    ) -> Result<(), AuthError> {
        let reset_before = now.minus(self.throttle.failure_window);
        for (key, limit) in keys {
            let failures = self
                .store
                .record_login_failure(key, now, reset_before)
                .await?;
            let excess = failures - i64::from(*limit);
            if excess >= 0 {
                let factor = 2u32.saturating_pow(u32::try_from(excess).unwrap_or(u32::MAX).min(31));
                let delay = self
                    .throttle
                    .base_delay
                    .saturating_mul(factor)
                    .min(self.throttle.max_delay);
                self.store.lock_login(key, now.plus(delay)).await?;
            }
        }
        Ok(())
    }

    async fn audit_login_failure(
        &self,
        user_id: Option<UserId>,
        client: &ClientInfo,
        reason: &str,
        email: &Email,
        now: Timestamp,
    ) {
        // The attempted email is kept (it says who was targeted); the
        // attempted password never is.
        let detail = format!("{reason}: {}", email.normalized);
        self.record(
            EventKind::LoginFailed,
            user_id,
            None,
            client,
            Some(&detail),
            now,
        )
        .await;
    }

    async fn audit(
        &self,
        kind: EventKind,
        principal: Option<&Principal>,
        client: &ClientInfo,
        detail: Option<&str>,
    ) {
        self.record(
            kind,
            principal.map(|p| p.user_id),
            principal.map(|p| p.session_id),
            client,
            detail,
            Timestamp::now(),
        )
        .await;
    }

    /// Writes an audit event. Best effort: a failure is logged, and the action
    /// it describes (often a logout) still completes.
    async fn record(
        &self,
        kind: EventKind,
        user_id: Option<UserId>,
        session_id: Option<SessionId>,
        client: &ClientInfo,
        detail: Option<&str>,
        now: Timestamp,
    ) {
        let event = NewEvent {
            kind,
            user_id,
            session_id,
            ip: client.ip(),
            user_agent: client.user_agent(),
            detail,
            now,
        };
        if let Err(error) = self.store.record_event(&event).await {
            tracing::error!(kind = kind.as_str(), error = ?error, "failed to record an audit event");
        }
    }
}

fn principal_of(record: &RefreshTokenRecord) -> Principal {
    Principal {
        user_id: record.user_id,
        session_id: record.session_id,
        email: record.email.clone(),
        authenticated_at: record.authenticated_at,
    }
}

fn account_key(email_normalized: &str) -> String {
    format!("account:{email_normalized}")
}

fn key_refs(keys: &[(String, u32)]) -> Vec<&str> {
    keys.iter().map(|(k, _)| k.as_str()).collect()
}

/// A mismatch is about the confirmation field; every other problem is about
/// the password itself.
fn password_field(
    problem: &super::passwords::PasswordProblem,
    password: &'static str,
    confirmation: &'static str,
) -> &'static str {
    match problem {
        super::passwords::PasswordProblem::Mismatch => confirmation,
        _ => password,
    }
}

/// A session as its owner sees it in a list.
pub fn describe_session(record: &SessionRecord) -> String {
    describe_device(record.user_agent.as_deref())
}

/// A human description of an audit event, for the account page.
pub fn describe_event(event: &EventRecord) -> String {
    match event.kind.as_str() {
        "registered" => "Account created".into(),
        "login_succeeded" => "Signed in".into(),
        "login_failed" => match event.detail.as_deref() {
            Some(d) if d.starts_with("throttled") => {
                "Sign-in attempt blocked (too many attempts)".into()
            }
            _ => "Failed sign-in attempt (wrong password)".into(),
        },
        "logout" => match event.detail.as_deref() {
            Some("others") => "Signed out of all other devices".into(),
            Some("global") => "Signed out everywhere".into(),
            _ => "Signed out".into(),
        },
        "token_refreshed" => "Session renewed".into(),
        "refresh_token_reuse_detected" => {
            "Stolen session token detected; that session was ended".into()
        }
        "password_changed" => "Password changed; other sessions ended".into(),
        "session_revoked" => "A session was revoked".into(),
        "load_shed" => "Sign-ins refused while the server was overloaded".into(),
        other => other.replace('_', " "),
    }
}
