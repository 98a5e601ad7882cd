use super::{StoreContext, StoreResult};

use super::{Store, on_pool};
use crate::server::time::Timestamp;

impl Store {
    /// The latest `locked_until` among `keys` that is still in the future.
    pub async fn throttled_until(
        &self,
        keys: &[&str],
        now: Timestamp,
    ) -> StoreResult<Option<Timestamp>> {
        let mut latest: Option<Timestamp> = None;
        for key in keys {
            let until: Option<Timestamp> = on_pool!(self, pool => sqlx::query_scalar(
                "SELECT locked_until FROM login_throttle WHERE key = $1 AND locked_until > $2",
            )
            .bind(*key)
            .bind(now)
            .fetch_optional(pool)
            .await)
            .context("Failed to read a login throttle")?;
            latest = latest.max(until);
        }
        Ok(latest)
    }

    /// Counts one failure against `key` and returns the count. A counter whose
    /// last failure is older than `reset_before` starts again from one. One
    /// atomic upsert, so instances sharing the database never lose a count.
    pub async fn record_login_failure(
        &self,
        key: &str,
        now: Timestamp,
        reset_before: Timestamp,
    ) -> StoreResult<i64> {
        on_pool!(self, pool => sqlx::query_scalar(
            "INSERT INTO login_throttle (key, failures, last_failure_at) VALUES ($1, 1, $2) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN login_throttle.last_failure_at < $3 THEN 1 \
                               ELSE login_throttle.failures + 1 END, \
               last_failure_at = $2 \
             RETURNING failures",
        )
        .bind(key)
        .bind(now)
        .bind(reset_before)
        .fetch_one(pool)
        .await)
        .context("Failed to record a login failure")
    }

    /// Locks `key` until `until`, never shortening an existing lock.
    pub async fn lock_login(&self, key: &str, until: Timestamp) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query(
            "UPDATE login_throttle SET locked_until = $2 \
             WHERE key = $1 AND (locked_until IS NULL OR locked_until < $2)",
        )
        .bind(key)
        .bind(until)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))
        .map(drop)
        .context("Failed to lock a login key")
    }

    pub async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        on_pool!(self, pool => sqlx::query("DELETE FROM login_throttle WHERE key = $1")
            .bind(key)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))
        .map(drop)
        .context("Failed to clear login failures")
    }
}
