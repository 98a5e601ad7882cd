//! Storage: every SQL statement Portcullis runs.
//!
//! One [`Store`] works on SQLite or PostgreSQL. Each query is written once in
//! SQL both engines accept (`$n` placeholders, `RETURNING`, `ON CONFLICT`), and
//! [`on_pool!`] (reads) or [`on_writer!`] (anything that writes; on SQLite
//! the one writer connection, see [`Pool`]) runs it on whichever engine is
//! configured. The column types
//! differ per engine (see `migrations/`), the Rust types do not: [`Timestamp`]
//! and [`uuid::Uuid`] encode natively on both. Everything above this module is
//! engine-agnostic. One query has a second runner: on a SQLite file, the
//! per-request session check runs the same text through rusqlite on the
//! calling thread ([`inline_reads`]), and falls back to the pool.
//!
//! State changes that must not race (refresh rotation, throttle counters) are
//! single conditional statements or transactions that start with a write, so
//! they are safe across instances without read-then-write windows.

pub mod admin;
pub mod email_tokens;
mod error;
mod events;
pub mod group_commit;
mod inline_reads;
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

/// Runs `$body` with `$pool` bound to the concrete pool, for statements that
/// only read. The body is compiled once per engine, so one text serves both.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::server::db::Pool::Sqlite { readers: $pool, .. } => $body,
            $crate::server::db::Pool::Postgres($pool) => $body,
        }
    };
}

/// [`on_pool!`] for anything that writes: on SQLite, the one writer
/// connection (see [`Pool::Sqlite`]); on PostgreSQL, the same pool.
macro_rules! on_writer {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            $crate::server::db::Pool::Sqlite { writer: $pool, .. } => $body,
            $crate::server::db::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use {on_pool, on_writer};

#[derive(Clone, Debug)]
pub(crate) enum Pool {
    /// SQLite commits one writer at a time, and a connection that finds the
    /// write lock taken polls for it with sleeps of up to 100 ms (its busy
    /// handler): under concurrent writes, the unlucky ones wait far longer
    /// than the writes ahead of them take. So every write goes through one
    /// connection, and writers queue for it in order (the pool's wait is
    /// first come, first served) instead of polling; reads use the others,
    /// and WAL lets them run beside the writer. Another process writing to
    /// the same file (the admin command line) still meets the busy handler.
    Sqlite {
        readers: sqlx::SqlitePool,
        writer: sqlx::SqlitePool,
    },
    Postgres(sqlx::PgPool),
}

#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: Pool,
    /// On SQLite, the committer that applies concurrent logouts together
    /// (see [`group_commit`]).
    pub(crate) group_commit: Option<std::sync::Arc<group_commit::GroupCommit>>,
    /// On a SQLite file, the per-request session check without sqlx's
    /// thread hop (see [`inline_reads`]).
    pub(crate) inline_reads: Option<std::sync::Arc<inline_reads::InlineReads>>,
}

impl Store {
    /// Opens the pool lazily: the first query connects, so an instance starts
    /// (and reports not-ready) while its database is down, and recovers by
    /// itself when it comes back.
    pub fn connect_lazy(settings: &DatabaseSettings) -> anyhow::Result<Store> {
        let url = settings.url.as_str();
        let mut inline_reads = None;
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
                inline_reads = inline_reads::InlineReads::for_file(options.get_filename())
                    .map(std::sync::Arc::new);
                let pool = |size, options: SqliteConnectOptions| {
                    SqlitePoolOptions::new()
                        .max_connections(size)
                        .acquire_timeout(settings.acquire_timeout)
                        // The connection is a file in this process, not a
                        // socket that can die: the default ping before every
                        // acquire only cost each query a second hop to the
                        // connection's thread.
                        .test_before_acquire(false)
                        .connect_lazy_with(options)
                };
                let writer = pool(1, options.clone());
                Pool::Sqlite {
                    // A write sent to a reader by mistake fails loudly
                    // ("attempt to write a readonly database") instead of
                    // quietly polling for the lock again.
                    readers: pool(
                        settings.max_connections,
                        options.clone().pragma("query_only", "ON"),
                    ),
                    writer,
                }
            }
        };
        let group_commit = match &pool {
            Pool::Sqlite { writer, .. } => Some(std::sync::Arc::new(
                group_commit::GroupCommit::new(writer.clone()),
            )),
            Pool::Postgres(_) => None,
        };
        Ok(Store {
            pool,
            group_commit,
            inline_reads,
        })
    }

    pub fn engine(&self) -> Engine {
        match self.pool {
            Pool::Sqlite { .. } => Engine::Sqlite,
            Pool::Postgres(_) => Engine::Postgres,
        }
    }

    /// Applies the engine's migrations from `migrations/<engine>/`.
    pub async fn migrate(&self) -> StoreResult<()> {
        StoreContext::context(
            match &self.pool {
                Pool::Sqlite { writer, .. } => {
                    sqlx::migrate!("migrations/sqlite").run(writer).await
                }
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

    /// Closes the pools; later queries fail with `PoolClosed`.
    pub async fn close(&self) {
        if let Some(inline) = &self.inline_reads {
            inline.close();
        }
        match &self.pool {
            Pool::Sqlite { readers, writer } => {
                tokio::join!(readers.close(), writer.close());
            }
            Pool::Postgres(pool) => pool.close().await,
        }
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
            on_writer!(self, pool => async {
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A store on a fresh SQLite file whose connections never wait for the
    /// write lock: a statement that finds it taken fails at once.
    pub(crate) async fn sqlite_store(dir: &tempfile::TempDir) -> Store {
        let settings = DatabaseSettings {
            engine: Engine::Sqlite,
            url: format!("sqlite://{}", dir.path().join("test.db").display()),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(30),
            statement_timeout: Duration::ZERO,
        };
        let store = Store::connect_lazy(&settings).expect("store");
        store.migrate().await.expect("migrations");
        store
    }

    /// A user with `count` live sessions.
    pub(crate) async fn user_with_sessions(
        store: &Store,
        email: &str,
        count: usize,
    ) -> (UserId, Vec<SessionId>) {
        let user = UserId::random();
        let now = Timestamp::now();
        on_writer!(store, pool => sqlx::query(users::INSERT_USER)
            .bind(user)
            .bind(email)
            .bind(email)
            .bind("hash")
            .bind(now)
            .execute(pool)
            .await
            .map(drop))
        .unwrap();
        let mut ids = Vec::new();
        for n in 0..count {
            let id = SessionId::random();
            let token = format!("token-{n}");
            let created = store
                .create_session(&NewSession {
                    id,
                    user_id: user,
                    password_hash: "hash",
                    rotation_key: b"key",
                    first_token_hash: token.as_bytes(),
                    now,
                    expires_at: now.plus(Duration::from_secs(3600)),
                    user_agent: None,
                    ip: None,
                    access_expires_at: now.unix_seconds() + 60,
                })
                .await
                .unwrap();
            assert!(created);
            ids.push(id);
        }
        (user, ids)
    }

    fn event(now: Timestamp) -> NewEvent<'static> {
        NewEvent {
            kind: EventKind::Logout,
            user_id: None,
            session_id: None,
            ip: None,
            user_agent: None,
            detail: Some("burst"),
            now,
        }
    }

    #[tokio::test]
    async fn concurrent_sqlite_writes_queue_for_one_writer_instead_of_meeting_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        let now = Timestamp::now();
        // Reads on the other connections meanwhile; with a busy timeout of
        // zero, any write that met another's lock would fail with SQLITE_BUSY.
        let writes = (0..200).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.record_event(&event(now)).await })
        });
        let reads = (0..50).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.recent_events_count().await })
        });
        let reads: Vec<_> = reads.collect();
        for write in writes.collect::<Vec<_>>() {
            write.await.unwrap().expect("every write commits");
        }
        for read in reads {
            read.await.unwrap().expect("reads run beside the writer");
        }
        assert_eq!(store.recent_events_count().await.unwrap(), 200);
    }

    #[tokio::test]
    async fn a_write_sent_to_the_sqlite_readers_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        let misrouted = on_pool!(store, pool => events::bind_event(
            sqlx::query(events::INSERT_EVENT),
            &event(Timestamp::now()),
        )
        .execute(pool)
        .await
        .map(drop));
        let error = misrouted.expect_err("the readers are query-only");
        assert!(error.to_string().contains("readonly"), "{error}");
        assert_eq!(store.recent_events_count().await.unwrap(), 0);
    }

    impl Store {
        async fn recent_events_count(&self) -> Result<i64, sqlx::Error> {
            on_pool!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM auth_events")
                .fetch_one(pool)
                .await)
        }
    }
}
