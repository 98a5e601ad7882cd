//! The per-request session check on SQLite, answered on the thread that asks.
//!
//! sqlx runs each SQLite connection on a thread of its own: a query is sent
//! there and its row sent back, two hand-offs between threads (futex
//! wake-ups and context switches) that cost more than the query itself, a
//! primary-key lookup of a few microseconds. `GET /auth/me` and every
//! protected page pay for one on each request; profiled under load, those
//! hand-offs were most of the server's time (README, Performance).
//! [`InlineReads`] keeps a few plain SQLite connections to the same file and
//! runs that one query on the tokio worker that asks, without an `.await`.
//!
//! It stays a real check of the database. Each query is its own read
//! transaction on the WAL, so it sees every commit made before it starts: a
//! logout that answered 200 is refused on the next request. A WAL reader does
//! not wait for the writer; for the rare moments it would (SQLite rebuilding
//! its WAL index), these connections do not wait at all. Whatever this cannot
//! answer (a busy or missing file, any error) it hands back, and the caller
//! asks the sqlx readers as before, so errors keep one classification
//! ([`super::StoreError`]) and one busy timeout.

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::{
    path::{Path, PathBuf},
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};
use uuid::Uuid;

use super::{ActiveSession, SessionId, UserId, sessions::ACTIVE_SESSION};
use crate::server::time::Timestamp;

/// Connections kept between queries. The query never awaits, so no more run
/// at once than there are threads asking (the tokio workers); a burst past
/// this opens and then closes the extra ones.
const MAX_IDLE: usize = 16;

#[derive(Debug)]
pub(crate) struct InlineReads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    closed: AtomicBool,
    answered: AtomicU64,
    handed_back: AtomicU64,
}

impl InlineReads {
    /// For the SQLite file at `path`; `None` for an in-memory database, which
    /// other connections cannot open.
    pub(crate) fn for_file(path: &Path) -> Option<InlineReads> {
        let name = path.as_os_str();
        if name.is_empty() || name == ":memory:" {
            return None;
        }
        Some(InlineReads {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            answered: AtomicU64::new(0),
            handed_back: AtomicU64::new(0),
        })
    }

    /// [`super::Store::active_session`], or `None` when this could not answer
    /// and the caller must ask the pool.
    pub(crate) fn active_session(
        &self,
        session_id: SessionId,
        user_id: UserId,
        now: Timestamp,
    ) -> Option<Option<ActiveSession>> {
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let connection = match idle.map_or_else(|| open(&self.path), Ok) {
            Ok(connection) => connection,
            Err(error) => return self.hand_back(&error),
        };
        match query(&connection, session_id, user_id, now) {
            Ok(found) => {
                let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
                if idle.len() < MAX_IDLE && !self.closed.load(Ordering::Acquire) {
                    idle.push(connection);
                }
                drop(idle);
                self.answered.fetch_add(1, Ordering::Relaxed);
                Some(found)
            }
            // The connection goes with the error: the next query opens a
            // fresh one.
            Err(error) => self.hand_back(&error),
        }
    }

    fn hand_back(&self, error: &rusqlite::Error) -> Option<Option<ActiveSession>> {
        self.handed_back.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%error, "session check handed to the connection pool");
        None
    }

    /// Later checks go to the pool (which is closed too, and says so).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Checks answered here, and checks handed back to the pool.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.answered.load(Ordering::Relaxed),
            self.handed_back.load(Ordering::Relaxed),
        )
    }
}

/// A connection that can only read, and never waits for a lock. The file
/// must exist (the store has migrated it); this never creates one.
fn open(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(std::time::Duration::ZERO)?;
    connection.pragma_update(None, "query_only", true)?;
    Ok(connection)
}

fn query(
    connection: &Connection,
    session_id: SessionId,
    user_id: UserId,
    now: Timestamp,
) -> rusqlite::Result<Option<ActiveSession>> {
    // `$1`, `$2`, `$3` are numbered in order of appearance, as sqlx binds
    // them: the same text serves both.
    connection
        .prepare_cached(ACTIVE_SESSION)?
        .query_row(
            (
                session_id.0.as_bytes().as_slice(),
                user_id.0.as_bytes().as_slice(),
                now.millis(),
            ),
            |row| {
                Ok(ActiveSession {
                    session_id: SessionId(Uuid::from_bytes(row.get(0)?)),
                    user_id: UserId(Uuid::from_bytes(row.get(1)?)),
                    email: row.get(2)?,
                    email_verified: row.get(3)?,
                    authenticated_at: Timestamp::from_millis(row.get(4)?),
                    totp: row.get(5)?,
                    recovery_codes_left: row.get(6)?,
                })
            },
        )
        .optional()
}

#[cfg(test)]
mod tests {
    use super::super::{
        RevokeReason, Store,
        tests::{sqlite_store, user_with_sessions},
    };
    use super::*;

    async fn user_with_session(store: &Store) -> (UserId, SessionId) {
        let (user, sessions) = user_with_sessions(store, "inline@example.com", 1).await;
        (user, sessions[0])
    }

    fn inline(store: &Store) -> &InlineReads {
        store
            .inline_reads
            .as_deref()
            .expect("a file store reads inline")
    }

    async fn pooled(store: &Store, session: SessionId, user: UserId) -> Option<ActiveSession> {
        super::super::on_pool!(store, pool => sqlx::query_as(ACTIVE_SESSION)
            .bind(session)
            .bind(user)
            .bind(Timestamp::now())
            .fetch_optional(pool)
            .await)
        .unwrap()
    }

    #[tokio::test]
    async fn answers_as_the_pool_does_and_sees_a_revocation_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        let (user, session) = user_with_session(&store).await;

        let found = store
            .active_session(session, user, Timestamp::now())
            .await
            .unwrap()
            .expect("live");
        let from_pool = pooled(&store, session, user).await.expect("live");
        assert_eq!(format!("{found:?}"), format!("{from_pool:?}"));
        assert_eq!(found.email, "inline@example.com");
        assert_eq!(found.session_id, session);
        assert_eq!(found.user_id, user);
        assert!(!found.totp);
        assert_eq!(inline(&store).counts(), (1, 0), "answered inline");

        // Another user's id, or an expiry in the past, finds nothing.
        let nobody = store
            .active_session(session, UserId::random(), Timestamp::now())
            .await
            .unwrap();
        assert!(nobody.is_none());
        let later = Timestamp::now().plus(std::time::Duration::from_secs(7200));
        assert!(
            store
                .active_session(session, user, later)
                .await
                .unwrap()
                .is_none()
        );

        assert!(
            store
                .revoke_session(session, RevokeReason::Logout, Timestamp::now())
                .await
                .unwrap()
        );
        assert!(
            store
                .active_session(session, user, Timestamp::now())
                .await
                .unwrap()
                .is_none(),
            "the next check after the commit refuses the session"
        );
        assert_eq!(inline(&store).counts(), (4, 0));
    }

    #[tokio::test]
    async fn a_failure_is_handed_to_the_pool_and_a_closed_store_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        let (user, session) = user_with_session(&store).await;

        // A file this cannot open (gone from under it): the pool answers.
        let elsewhere = InlineReads::for_file(&dir.path().join("missing.db")).unwrap();
        assert!(
            elsewhere
                .active_session(session, user, Timestamp::now())
                .is_none()
        );
        assert_eq!(elsewhere.counts(), (0, 1));
        assert!(
            !dir.path().join("missing.db").exists(),
            "never creates a file"
        );

        // A statement this cannot run (the schema is not there): handed back,
        // and the connection is not kept.
        let empty = dir.path().join("empty.db");
        Connection::open(&empty).unwrap();
        let unmigrated = InlineReads::for_file(&empty).unwrap();
        assert!(
            unmigrated
                .active_session(session, user, Timestamp::now())
                .is_none()
        );
        assert!(unmigrated.idle.lock().unwrap().is_empty());
        assert_eq!(unmigrated.counts(), (0, 1));

        assert!(InlineReads::for_file(Path::new(":memory:")).is_none());

        store.close().await;
        let error = store
            .active_session(session, user, Timestamp::now())
            .await
            .expect_err("a closed store answers nothing");
        assert!(error.is_unavailable(), "{error}");
        assert_eq!(inline(&store).counts(), (0, 0), "closed: not asked");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_checks_beside_writes_never_wait_and_never_miss() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        let (user, session) = user_with_session(&store).await;
        let checks = (0..400).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.active_session(session, user, Timestamp::now()).await })
        });
        let writes = (0..50).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.mark_reauthenticated(session, Timestamp::now()).await })
        });
        let checks: Vec<_> = checks.collect();
        for write in writes.collect::<Vec<_>>() {
            write.await.unwrap().unwrap();
        }
        for check in checks {
            assert!(check.await.unwrap().unwrap().is_some());
        }
        let (answered, handed_back) = inline(&store).counts();
        assert_eq!(answered + handed_back, 400);
        assert_eq!(handed_back, 0, "a WAL reader never met the writer's lock");
        assert!(inline(&store).idle.lock().unwrap().len() <= MAX_IDLE);
    }
}
