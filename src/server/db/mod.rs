//! Storage: every SQL statement Portcullis runs.
//!
//! One [`Store`] works on SQLite or PostgreSQL. Each query is written once in
//! SQL both engines accept (`$n` placeholders, `RETURNING`, `ON CONFLICT`), and
//! [`on_pool!`] runs it on whichever pool is configured. The column types
//! differ per engine (see `migrations/`), the Rust types do not: [`Timestamp`]
//! and [`uuid::Uuid`] encode natively on both. Everything above this module is
//! engine-agnostic.
//!
//! State changes that must not race (refresh rotation, throttle counters) are
//! single conditional statements or transactions that start with a write, so
//! they are safe across instances without read-then-write windows.

pub mod admin;
pub mod email_tokens;
mod error;
mod events;
pub mod live;
pub mod mail;
pub mod mfa;
mod models;
pub mod passkeys;
pub mod session_events;
pub mod sessions;
mod throttle;
mod users;

pub use admin::{AdminSession, ApiKeyRecord, ErasedEvents, UserSummary};
pub use email_tokens::{
    EmailChange, EmailTarget, LinkPurpose, LinkRecord, LinkReset, NewLink, Registration,
};
pub(crate) use error::StoreContext;
pub use error::{StoreError, StoreResult};
pub use live::SourceEvent;
pub use mail::{NewMail, OutboxMail};
pub use mfa::{ChallengeRecord, MfaStatus, NewChallenge, TotpDisable, TotpEnable, TotpRecord};
pub use models::*;
pub use passkeys::{NewPasskey, PasskeyRecord};
pub use session_events::{EventDelivery, NewLockEvent, SessionEvent};
pub use throttle::Reserved;

use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use std::{str::FromStr, time::Duration};

pub use super::config::Engine;
use super::{config::DatabaseSettings, time::Timestamp};

/// Runs `$body` with `$pool` bound to the concrete pool. The body is compiled
/// once per engine, so one text serves both.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::server::db::Pool::Sqlite($pool) => $body,
            $crate::server::db::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: Pool,
}

impl Store {
    /// Opens the pool lazily: the first query connects, so an instance starts
    /// (and reports not-ready) while its database is down, and recovers by
    /// itself when it comes back.
    pub fn connect_lazy(settings: &DatabaseSettings) -> anyhow::Result<Store> {
        let url = settings.url.as_str();
        let pool = match settings.engine {
            Engine::Postgres => {
                let options = PgConnectOptions::from_str(url)
                    .map_err(|e| {
                        anyhow::Error::new(e).context("DATABASE_URL is not a valid PostgreSQL URL")
                    })?
                    .application_name("portcullis")
                    // A statement that runs or waits for a lock longer than
                    // this is cancelled (and answered 503), so a stalled
                    // database cannot hold a request that already has a
                    // connection.
                    .options([
                        ("statement_timeout", millis(settings.statement_timeout)),
                        ("lock_timeout", millis(settings.statement_timeout)),
                    ]);
                Pool::Postgres(
                    PgPoolOptions::new()
                        .max_connections(settings.max_connections)
                        .min_connections(0)
                        .acquire_timeout(settings.acquire_timeout)
                        .idle_timeout(Some(Duration::from_secs(300)))
                        .connect_lazy_with(options),
                )
            }
            Engine::Sqlite => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(|e| {
                        anyhow::Error::new(e).context("DATABASE_URL is not a valid SQLite URL")
                    })?
                    .create_if_missing(true)
                    .foreign_keys(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // A logout that answered 200 must survive a crash of the
                    // process and of the machine: fsync every commit.
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(settings.statement_timeout);
                crate::server::files::private_sqlite_file(options.get_filename())?;
                Pool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(settings.max_connections)
                        .acquire_timeout(settings.acquire_timeout)
                        .connect_lazy_with(options),
                )
            }
        };
        Ok(Store { pool })
    }

    pub fn engine(&self) -> Engine {
        match self.pool {
            Pool::Sqlite(_) => Engine::Sqlite,
            Pool::Postgres(_) => Engine::Postgres,
        }
    }

    /// Applies the engine's migrations from `migrations/<engine>/`.
    pub async fn migrate(&self) -> StoreResult<()> {
        StoreContext::context(
            match &self.pool {
                Pool::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await,
                Pool::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await,
            },
            "Failed to apply database migrations",
        )
    }

    /// Cheap round trip for the readiness probe.
    pub async fn ping(&self) -> StoreResult<()> {
        StoreContext::context(
            on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(drop)),
            "Failed to reach the database",
        )
    }

    /// Closes the pool; later queries fail with `PoolClosed`.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }

    /// Deletes what no one needs any more: expired sessions, sessions revoked
    /// before `revoked_before`, events before `events_before` and stale
    /// throttle counters. Refresh tokens go with their sessions.
    pub async fn sweep(
        &self,
        now: Timestamp,
        revoked_before: Timestamp,
        events_before: Timestamp,
        throttle_before: Timestamp,
    ) -> StoreResult<SweepReport> {
        StoreContext::context(
            on_pool!(self, pool => async {
            let sessions = sqlx::query(
                "DELETE FROM sessions WHERE expires_at <= $1 OR revoked_at <= $2",
            )
            .bind(now)
            .bind(revoked_before)
            .execute(pool)
            .await?
            .rows_affected();
            let events = sqlx::query("DELETE FROM auth_events WHERE occurred_at < $1")
                .bind(events_before)
                .execute(pool)
                .await?
                .rows_affected();
            let throttles = sqlx::query(
                "DELETE FROM login_throttle WHERE last_failure_at < $1 \
                 AND (locked_until IS NULL OR locked_until < $2)",
            )
            .bind(throttle_before)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected();
            let links = sqlx::query("DELETE FROM email_tokens WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected();
            let mut challenges = sqlx::query("DELETE FROM mfa_challenges WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected();
            challenges += sqlx::query("DELETE FROM webauthn_challenges WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected();
            // Authenticator apps set up and never confirmed.
            challenges += sqlx::query(
                "DELETE FROM user_totp WHERE enabled_at IS NULL AND created_at < $1",
            )
            .bind(now.minus(crate::server::service::SETUP_TTL))
            .execute(pool)
            .await?
            .rows_affected();
            Ok::<_, sqlx::Error>(SweepReport { sessions, events, throttles, links, challenges })
        }.await),
            "Failed to sweep expired records",
        )
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub sessions: u64,
    pub events: u64,
    pub throttles: u64,
    /// Expired email links (password reset).
    pub links: u64,
    /// Pending sign-ins that expired before their second step, passkey
    /// prompts never answered, and authenticator apps set up but not
    /// confirmed in time.
    pub challenges: u64,
}

/// A duration as PostgreSQL reads a setting in milliseconds.
fn millis(duration: Duration) -> String {
    format!("{}ms", duration.as_millis())
}
