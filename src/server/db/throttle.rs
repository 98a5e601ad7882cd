use super::{StoreContext, StoreResult};

use super::{Store, on_writer};
use crate::server::time::Timestamp;

/// What reserving an attempt found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reserved {
    /// The attempt may go ahead; it is the `n`th in the current window.
    Granted(i64),
    /// The key is locked until then; nothing was counted.
    Locked(Timestamp),
}

impl Store {
    /// Reserves one attempt against `key` before the secret is checked, so
    /// that parallel guesses cannot all be checked before the first failure
    /// is counted. One transaction whose first statement writes (and so locks
    /// the key's row on PostgreSQL, the database on SQLite): concurrent
    /// reservations of one key, on any instance, run one after another.
    ///
    /// A locked key refuses. Otherwise the attempt is counted (from one again
    /// when the previous one is older than `reset_before`), and when
    /// `lock_for(count)` says so the key is locked from now on: this attempt
    /// proceeds, the ones after it wait.
    pub async fn reserve_attempt(
        &self,
        key: &str,
        now: Timestamp,
        reset_before: Timestamp,
        lock_for: impl Fn(i64) -> Option<std::time::Duration>,
    ) -> StoreResult<Reserved> {
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let (failures, last, locked_until): (i64, Timestamp, Option<Timestamp>) = sqlx::query_as(
                "INSERT INTO login_throttle (key, failures, last_failure_at) VALUES ($1, 0, $2) \
                 ON CONFLICT (key) DO UPDATE SET failures = login_throttle.failures \
                 RETURNING failures, last_failure_at, locked_until",
            )
            .bind(key)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            if let Some(until) = locked_until.filter(|until| *until > now) {
                tx.commit().await?;
                return Ok::<_, sqlx::Error>(Reserved::Locked(until));
            }
            let count = if failures > 0 && last < reset_before { 1 } else { failures + 1 };
            let lock = lock_for(count).map(|delay| now.plus(delay));
            sqlx::query(
                "UPDATE login_throttle SET failures = $2, last_failure_at = $3, \
                 locked_until = COALESCE($4, locked_until) WHERE key = $1",
            )
            .bind(key)
            .bind(count)
            .bind(now)
            .bind(lock)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(Reserved::Granted(count))
        }.await)
        .context("Failed to reserve a login attempt")
    }

    /// Gives back an attempt that turned out not to be a guess (the secret
    /// was right, or nothing was checked). A lock that this count no longer
    /// justifies (below `limit`) is lifted with it.
    pub async fn release_attempt(&self, key: &str, limit: u32) -> StoreResult<()> {
        on_writer!(self, pool => sqlx::query(
            "UPDATE login_throttle SET failures = failures - 1, \
             locked_until = CASE WHEN failures - 1 < $2 THEN NULL ELSE locked_until END \
             WHERE key = $1 AND failures > 0",
        )
        .bind(key)
        .bind(i64::from(limit))
        .execute(pool)
        .await
        .map(drop))
        .context("Failed to give back a login attempt")
    }

    pub async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        on_writer!(self, pool => sqlx::query("DELETE FROM login_throttle WHERE key = $1")
            .bind(key)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))
        .map(drop)
        .context("Failed to clear login failures")
    }
}
