//! Refresh-token rotation with reuse detection.
//!
//! Each refresh retires the presented token and issues its successor,
//! derived as HMAC(session key, token), so concurrent refreshes of one token
//! (two tabs, two instances) agree on one successor. A retired token
//! presented after the grace window can only be a copy: the session is
//! revoked.

use super::{AuthService, Issued};
use crate::server::{
    client::ClientInfo,
    db::{
        EventKind, RefreshTokenRecord, RevokeReason,
        sessions::{Rotated, Rotation},
    },
    error::AuthError,
    time::Timestamp,
    tokens::RefreshToken,
};

/// How many successors a retired token may be behind the live one and still
/// be adopted inside the grace window (a burst of tabs refreshing at once).
const MAX_ADOPTION_STEPS: usize = 4;

/// The most rotations a pruned token may be behind its session's oldest kept
/// token and still be recognised as a replay. At the default access-token
/// lifetime (15 minutes) a 30-day session rotates about 2,880 times, so a
/// real chain is shorter; the bound keeps a forged token cheap to refuse.
const MAX_PRUNED_WALK: i64 = 8192;

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
        let Some(record) = self.store.find_refresh_token(&presented.hash()).await? else {
            return Err(self.unknown_token(&presented, now, client).await?);
        };
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
            let successor = presented.successor(&record.rotation_key, record.session_id);
            let rotated = self
                .store
                .rotate_refresh_token(&Rotation {
                    session_id: record.session_id,
                    old_hash: &presented.hash(),
                    new_hash: &successor.hash(),
                    new_generation: record.generation + 1,
                    max_per_window: self.sessions.max_rotations_per_minute,
                    now,
                    ip: client.ip(),
                    user_agent: client.user_agent(),
                    access_expires_at: self.access_exp(now),
                })
                .await?;
            // A rotation is routine: the session's `last_used_at` records it,
            // and no audit row is written for each (a client could write as
            // many as it liked).
            return match rotated {
                Rotated::Done => self.issue(&record, successor, now),
                Rotated::OverBudget { until } => Err(AuthError::Throttled {
                    retry_after: now.until(until),
                }),
                // Another request rotated it a moment ago: adopt its result.
                Rotated::Lost => {
                    self.adopt_successor(&presented, &record, now, now, client)
                        .await
                }
            };
        }
        let retired_at = record.retired_at.unwrap_or(now);
        self.adopt_successor(&presented, &record, retired_at, now, client)
            .await
    }

    /// A retired token replayed outside the grace window can only be a copy:
    /// the whole session is revoked. Returns the answer for the request.
    async fn reuse_detected(
        &self,
        record: &RefreshTokenRecord,
        now: Timestamp,
        client: &ClientInfo,
    ) -> Result<AuthError, AuthError> {
        let event = super::audit::event(
            EventKind::RefreshTokenReuseDetected,
            Some(record.user_id),
            Some(record.session_id),
            client,
            None,
            now,
        );
        let notice = self.reuse_notice(&record.email);
        let revoked = self
            .store
            .revoke_for_reuse(record.session_id, now, &event, &notice)
            .await?;
        if revoked {
            tracing::warn!(session = %record.session_id, "retired refresh token replayed; session revoked");
            self.mail_queued();
        }
        Ok(AuthError::SessionEnded)
    }

    /// A token with no row: never ours, or retired so long ago that its row
    /// was pruned (see `KEPT_RETIRED_GENERATIONS`). A pruned token is still
    /// recognised: its session part names the session, and recomputing its
    /// descendants reaches the session's oldest kept token. That is reuse,
    /// like any retired token's, and revokes the session. A token whose
    /// descendants never get there is a forgery and changes nothing. The walk
    /// is bounded by [`MAX_PRUNED_WALK`] steps (microseconds each).
    async fn unknown_token(
        &self,
        presented: &RefreshToken,
        now: Timestamp,
        client: &ClientInfo,
    ) -> Result<AuthError, AuthError> {
        let Some(session) = presented.claimed_session() else {
            return Ok(AuthError::SessionEnded);
        };
        let Some((oldest, oldest_hash)) = self.store.oldest_refresh_token(session).await? else {
            return Ok(AuthError::SessionEnded);
        };
        if oldest.revoked_at.is_some() || oldest.expires_at <= now {
            return Ok(AuthError::SessionEnded);
        }
        // A descendant of the presented token is at most `generation` steps
        // away from the oldest kept one (generations start at 0).
        let steps = oldest.generation.clamp(0, MAX_PRUNED_WALK);
        let mut candidate = presented.successor(&oldest.rotation_key, session);
        for _ in 0..steps {
            if candidate.hash().as_slice() == oldest_hash.as_slice() {
                // Retired no later than the oldest kept token was: if that
                // is still inside the grace window, so may this one be (a
                // tab far behind a burst), and it is answered as superseded,
                // as a kept token that far behind would be.
                let recent = oldest
                    .retired_at
                    .is_some_and(|at| at.until(now) <= self.sessions.refresh_grace);
                if recent {
                    return Ok(AuthError::RefreshSuperseded);
                }
                return self.reuse_detected(&oldest, now, client).await;
            }
            candidate = candidate.successor(&oldest.rotation_key, session);
        }
        Ok(AuthError::SessionEnded)
    }

    async fn adopt_successor(
        &self,
        presented: &RefreshToken,
        record: &RefreshTokenRecord,
        retired_at: Timestamp,
        now: Timestamp,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        if retired_at.until(now) > self.sessions.refresh_grace {
            return Err(self.reuse_detected(record, now, client).await?);
        }
        let mut candidate = presented.successor(&record.rotation_key, record.session_id);
        for _ in 0..MAX_ADOPTION_STEPS {
            let Some(next) = self.store.find_refresh_token(&candidate.hash()).await? else {
                break;
            };
            if next.revoked_at.is_some() {
                return Err(AuthError::SessionEnded);
            }
            match next.retired_at {
                None => {
                    // Adopting a successor issues an access token without a
                    // rotation: its expiry is recorded first.
                    self.store
                        .extend_access(next.session_id, self.access_exp(now))
                        .await?;
                    return self.issue(&next, candidate, now);
                }
                Some(at) if at.until(now) <= self.sessions.refresh_grace => {
                    candidate = candidate.successor(&record.rotation_key, record.session_id);
                }
                Some(_) => break,
            }
        }
        Err(AuthError::RefreshSuperseded)
    }
}
