//! Logout, of this device, of the others, or of every device: the one
//! policy both transports use.

use super::AuthService;
use crate::{
    auth::LogoutScope,
    server::{
        client::ClientInfo,
        cookies::CookieCredentials,
        db::{EventKind, RevokeReason, SessionId, UserId},
        error::{AuthError, LogoutFailure},
        time::Timestamp,
        tokens::{AccessClaims, RefreshToken, TokenError},
    },
};

/// What a logout request carried, as the transport found it. Read before the
/// cookies are cleared: afterwards the jar answers with the removal cookies.
pub struct LogoutCredentials<'a> {
    /// The `Authorization` header, if any: a bearer token, or `Err` when the
    /// header is not a usable bearer token.
    pub bearer: Option<Result<&'a str, TokenError>>,
    pub cookies: &'a CookieCredentials,
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

impl AuthService {
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
            self.audit
                .record(
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
}
