//! Logout, of this device, of the others, or of every device: the one
//! policy both transports use.

use super::AuthService;
use crate::{
    auth::LogoutScope,
    server::{
        client::ClientInfo,
        cookies::CookieCredentials,
        db::{EventKind, RevokeReason, SessionId, UserId, sessions::Revocation},
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

/// How good a credential is as proof of its session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proof {
    /// Valid now: an unexpired access token, the live refresh token.
    Live,
    /// Genuine but over: an expired access token, a retired refresh token.
    Stale,
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
        let now = Timestamp::now();
        let found = match credentials.bearer {
            Some(bearer) => bearer
                .and_then(|token| self.access_proof(token, now))
                .map_err(|_| LogoutFailure::InvalidBearer)?,
            None => self
                .session_for_logout(
                    credentials.cookies.access.as_deref(),
                    credentials.cookies.refresh.as_deref(),
                    now,
                )
                .await
                .map_err(LogoutFailure::from)?,
        };
        self.logout(found, scope, client)
            .await
            .map_err(LogoutFailure::from)
    }

    /// The session an access token names, and how good a proof it is: live
    /// while it is valid; stale once expired, for as long as a session can
    /// live (`PORTCULLIS_REFRESH_TOKEN_TTL`); `Ok(None)` after that. `Err`
    /// when the token is not one of ours at all.
    fn access_proof(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<Option<(SessionRef, Proof)>, TokenError> {
        let claims = match self.tokens.verify_access(token) {
            Ok(claims) => return Ok(Some((SessionRef::from(&claims), Proof::Live))),
            // Only an expired token is worth a second look without expiry.
            Err(TokenError::Expired) => self.tokens.verify_access_ignoring_expiry(token)?,
            Err(other) => return Err(other),
        };
        let oldest = now.minus(self.sessions.refresh_ttl).unix_seconds();
        Ok((claims.exp > oldest).then(|| (SessionRef::from(&claims), Proof::Stale)))
    }

    /// Finds the session a logout names from the cookies: a live credential
    /// first (the access token, else the refresh token), then a stale one
    /// (an expired access token, a retired refresh token): stale proof still
    /// ends this session, as the logout contract asks. `None` when neither
    /// names a session we know: logout is then a no-op that still succeeds.
    async fn session_for_logout(
        &self,
        access: Option<&str>,
        refresh: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<(SessionRef, Proof)>, AuthError> {
        let from_access = access.and_then(|token| self.access_proof(token, now).ok().flatten());
        if let Some(found @ (_, Proof::Live)) = from_access {
            return Ok(Some(found));
        }
        let from_refresh = match refresh.and_then(RefreshToken::parse) {
            Some(token) => self
                .store
                .find_refresh_token(&token.hash())
                .await?
                .map(|record| {
                    let live = record.retired_at.is_none()
                        && record.revoked_at.is_none()
                        && record.expires_at > now;
                    let session = SessionRef {
                        session_id: record.session_id,
                        user_id: record.user_id,
                    };
                    (session, if live { Proof::Live } else { Proof::Stale })
                }),
            None => None,
        };
        Ok(match (from_access, from_refresh) {
            (_, Some(found @ (_, Proof::Live))) => Some(found),
            (Some(found), _) => Some(found),
            (None, found) => found,
        })
    }

    /// Ends sessions. `Local` ends `target` and is idempotent: an already
    /// ended or unknown session is fine. `Others` and `Global` reach other
    /// devices, so they need `target` to be a live session.
    async fn logout(
        &self,
        found: Option<(SessionRef, Proof)>,
        scope: LogoutScope,
        client: &ClientInfo,
    ) -> Result<u64, AuthError> {
        let now = Timestamp::now();
        let target = match found {
            Some((target, _)) if scope == LogoutScope::Local => target,
            // Reaching other devices takes a live credential: an expired
            // access token or a retired refresh token is not enough.
            Some((target, Proof::Live)) => target,
            Some((_, Proof::Stale)) => return Err(AuthError::Unauthenticated),
            None => {
                return match scope {
                    LogoutScope::Local => Ok(0),
                    _ => Err(AuthError::Unauthenticated),
                };
            }
        };
        // The logout and its audit row commit together (one fsync).
        let event = super::audit::event(
            EventKind::Logout,
            Some(target.user_id),
            Some(target.session_id),
            client,
            Some(scope.as_str()),
            now,
        );
        let ended = match scope {
            LogoutScope::Local => {
                self.store
                    .revoke_recorded(
                        Revocation::One(target.session_id),
                        RevokeReason::Logout,
                        now,
                        &event,
                        false,
                    )
                    .await?
            }
            LogoutScope::Others | LogoutScope::Global => {
                self.store
                    .active_session(target.session_id, target.user_id, now)
                    .await?
                    .ok_or(AuthError::SessionEnded)?;
                let (keep, reason) = match scope {
                    LogoutScope::Others => (Some(target.session_id), RevokeReason::LogoutOthers),
                    _ => (None, RevokeReason::LogoutEverywhere),
                };
                let revocation = Revocation::OfUser {
                    user_id: target.user_id,
                    keep,
                };
                self.store
                    .revoke_recorded(revocation, reason, now, &event, true)
                    .await?
            }
        };
        Ok(ended)
    }
}
