//! The event source: session events the triggers on `sessions` write,
//! account events the triggers on `users` write (see the migrations
//! `session_events` and `account_events`), and throttle locks written with
//! their audit row; with their webhook delivery state. Claimed with a lease
//! like the mail outbox: one instance delivers an event at a time, and one
//! that dies mid-delivery leaves it due again when the lease runs out.

use std::time::Duration;

use super::{NewEvent, SessionId, Store, StoreContext, StoreResult, UserId, on_pool, on_writer};
use crate::server::time::Timestamp;

/// An event claimed for delivery.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SessionEvent {
    pub id: i64,
    /// `created`, `revoked`, `user_created`, `password_changed`,
    /// `email_changed`, `disabled`, `enabled`, `deleted` or `throttled`.
    pub kind: String,
    /// For the session events.
    pub session_id: Option<SessionId>,
    /// For all but a network's throttle lock.
    pub user_id: Option<UserId>,
    pub reason: Option<String>,
    pub access_expires_at: Option<i64>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// A throttle lock's key kind, network (for `ip`) and end.
    pub key_kind: Option<String>,
    pub network: Option<String>,
    pub locked_until: Option<Timestamp>,
    pub occurred_at: Timestamp,
    /// Attempts including this one.
    pub attempts: i32,
}

/// A throttle lock that stands, reported as `login.throttled`.
#[derive(Clone, Copy, Debug)]
pub struct NewLockEvent<'a> {
    /// The account's owner, for an account's key.
    pub user_id: Option<UserId>,
    /// `account`, `device`, `backstop` or `ip`.
    pub key_kind: &'a str,
    /// The client network, for `ip`.
    pub network: Option<&'a str>,
    pub locked_until: Timestamp,
}

/// An event's delivery, as an operator lists it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EventDelivery {
    pub id: i64,
    pub kind: String,
    pub occurred_at: Timestamp,
    pub attempts: i32,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
    pub dead_at: Option<Timestamp>,
}

impl Store {
    /// Records a lock's audit `event` and its `login.throttled` event in one
    /// transaction: the event is sent exactly when the lock is on record.
    pub async fn record_lock(
        &self,
        event: &NewEvent<'_>,
        lock: &NewLockEvent<'_>,
    ) -> StoreResult<()> {
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            super::events::bind_event(sqlx::query(super::events::INSERT_EVENT), event)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO session_events (kind, user_id, key_kind, network, locked_until, \
                 occurred_at, next_attempt_at) VALUES ('throttled', $1, $2, $3, $4, $5, $5)",
            )
            .bind(lock.user_id)
            .bind(lock.key_kind)
            .bind(lock.network)
            .bind(lock.locked_until)
            .bind(event.now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        }.await)
        .context("Failed to record a throttle lock")
    }

    /// The most recent events and their delivery state, newest first; only
    /// dead ones with `dead_only`.
    pub async fn list_event_deliveries(
        &self,
        limit: i64,
        dead_only: bool,
    ) -> StoreResult<Vec<EventDelivery>> {
        on_pool!(self, pool => sqlx::query_as(
            "SELECT id, kind, occurred_at, attempts, last_status, last_error, next_attempt_at, \
             delivered_at, dead_at FROM session_events \
             WHERE ($2 = 0 OR dead_at IS NOT NULL) ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .bind(i32::from(dead_only))
        .fetch_all(pool)
        .await)
        .context("Failed to list webhook deliveries")
    }

    /// Makes event `id` due again now, dead or delivered; `false` when no
    /// such event is kept.
    pub async fn retry_session_event(&self, id: i64, now: Timestamp) -> StoreResult<bool> {
        on_writer!(self, pool => sqlx::query(
            "UPDATE session_events SET next_attempt_at = $2, delivered_at = NULL, dead_at = NULL \
             WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(pool)
        .await
        .map(|done| done.rows_affected() == 1))
        .context("Failed to retry a webhook delivery")
    }

    /// Claims the oldest due event for `lease` (see `claim_mail`).
    pub async fn claim_session_event(
        &self,
        now: Timestamp,
        lease: Duration,
    ) -> StoreResult<Option<SessionEvent>> {
        on_writer!(self, pool => sqlx::query_as(
            "UPDATE session_events SET next_attempt_at = $2, attempts = attempts + 1 \
             WHERE id = (SELECT id FROM session_events WHERE delivered_at IS NULL \
                         AND dead_at IS NULL AND next_attempt_at <= $1 \
                         ORDER BY next_attempt_at, id LIMIT 1) \
             AND next_attempt_at <= $1 AND delivered_at IS NULL AND dead_at IS NULL \
             RETURNING id, kind, session_id, user_id, reason, access_expires_at, ip, user_agent, \
             key_kind, network, locked_until, occurred_at, attempts",
        )
        .bind(now)
        .bind(now.plus(lease))
        .fetch_optional(pool)
        .await)
        .context("Failed to claim a session event")
    }

    /// The receiver took it (`status`), or it was filtered out (`None`).
    pub async fn session_event_delivered(
        &self,
        id: i64,
        status: Option<u16>,
        now: Timestamp,
    ) -> StoreResult<()> {
        on_writer!(self, pool => sqlx::query(
            "UPDATE session_events SET delivered_at = $2, last_status = $3, last_error = NULL \
             WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .bind(status.map(i32::from))
        .execute(pool)
        .await
        .map(drop))
        .context("Failed to record a delivered session event")
    }

    /// An attempt failed: try again at `retry_at`, or, with `dead`, give up.
    pub async fn session_event_failed(
        &self,
        id: i64,
        status: Option<u16>,
        error: &str,
        retry_at: Timestamp,
        dead: Option<Timestamp>,
    ) -> StoreResult<()> {
        on_writer!(self, pool => sqlx::query(
            "UPDATE session_events SET next_attempt_at = $2, last_status = $3, last_error = $4, \
             dead_at = $5 WHERE id = $1",
        )
        .bind(id)
        .bind(retry_at)
        .bind(status.map(i32::from))
        .bind(error)
        .bind(dead)
        .execute(pool)
        .await
        .map(drop))
        .context("Failed to reschedule a session event")
    }

    /// Deletes delivered events older than `delivered_before`, dead ones
    /// older than `dead_before`, and any event older than `stale_before`
    /// (never claimed: no webhook endpoint is configured); how many went.
    pub async fn prune_session_events(
        &self,
        delivered_before: Timestamp,
        dead_before: Timestamp,
        stale_before: Timestamp,
    ) -> StoreResult<u64> {
        on_writer!(self, pool => sqlx::query(
            "DELETE FROM session_events WHERE (delivered_at IS NOT NULL AND delivered_at < $1) \
             OR (dead_at IS NOT NULL AND dead_at < $2) OR occurred_at < $3",
        )
        .bind(delivered_before)
        .bind(dead_before)
        .bind(stale_before)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))
        .context("Failed to prune session events")
    }
}
