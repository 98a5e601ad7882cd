//! Refresh-token rotation with reuse detection.
//!
//! Each refresh retires the presented token and issues its successor,
//! derived as HMAC(session key, token), so concurrent refreshes of one token
//! (two tabs, two instances) agree on one successor. A retired token
//! presented after the grace window can only be a copy: the session is
//! revoked.

use super::{AuthService, Issued, principal_of};
use crate::server::{
    client::ClientInfo,
    db::{EventKind, RefreshTokenRecord, RevokeReason, sessions::Rotation},
    error::AuthError,
    time::Timestamp,
    tokens::RefreshToken,
};

/// How many successors a retired token may be behind the live one and still
/// be adopted inside the grace window (a burst of tabs refreshing at once).
const MAX_ADOPTION_STEPS: usize = 4;

impl AuthService {
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
                self.audit
                    .of(
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
                self.audit
                    .of(
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
}
