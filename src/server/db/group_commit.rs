//! Group commit of logouts on SQLite: the logouts that arrive while the
//! writer connection is busy are applied together, in one transaction and
//! one fsync, and each caller still gets its own answer.
//!
//! With `synchronous=FULL` a commit costs an fsync, and SQLite commits one
//! writer at a time: 32 logouts at once used to queue for 32 commits, each
//! four statements long (begin, revoke, audit row, commit), each statement a
//! hop to the connection's thread. Here one task takes every logout waiting
//! (at most [`MAX_BATCH`]) and applies them set-wise: one `UPDATE … FROM` over
//! a `VALUES` list that returns the sessions it ended, one multi-row insert
//! of their audit rows, one commit. The `session_events` trigger writes each
//! ended session's outbox row in the same transaction, as it does for a lone
//! logout, so webhooks and live sign-out see exactly the same events.
//!
//! The outcome per logout is what it would have been alone, in submission
//! order: a session named twice is ended by the first and found ended by the
//! second. When a batch fails as a whole, each of its logouts is retried in
//! a transaction of its own, so one bad logout cannot fail the others.
//!
//! Nothing waits to gather a batch: a logout that finds the writer idle is
//! committed at once, alone. PostgreSQL commits concurrent transactions on
//! connections of their own and does not come here.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};

use sqlx::{Acquire, QueryBuilder, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::{
    mpsc::{self, error::TrySendError},
    oneshot,
};

use super::{EventKind, NewEvent, RevokeReason, SessionId, UserId};
use crate::server::time::Timestamp;

/// Logouts per commit: 3 bound values each in the revocation and 7 in the
/// audit insert, far below SQLite's limit on bound values.
pub const MAX_BATCH: usize = 64;

/// Logouts that may wait for the committer; one that finds the queue full
/// goes to the writer alone.
const QUEUE: usize = 4096;

/// One session's logout: [`super::Store::revoke_recorded`] of
/// [`super::sessions::Revocation::One`], owned so that it can wait in the
/// queue.
#[derive(Clone, Debug)]
pub struct OneRevocation {
    pub session_id: SessionId,
    pub reason: RevokeReason,
    pub now: Timestamp,
    pub event: OwnedEvent,
    /// Record the audit row even when the session was already ended.
    pub record_always: bool,
}

/// A [`NewEvent`] that owns its text.
#[derive(Clone, Debug)]
pub struct OwnedEvent {
    kind: EventKind,
    user_id: Option<UserId>,
    session_id: Option<SessionId>,
    ip: Option<String>,
    user_agent: Option<String>,
    detail: Option<String>,
    now: Timestamp,
}

impl From<&NewEvent<'_>> for OwnedEvent {
    fn from(event: &NewEvent<'_>) -> Self {
        OwnedEvent {
            kind: event.kind,
            user_id: event.user_id,
            session_id: event.session_id,
            ip: event.ip.map(str::to_owned),
            user_agent: event.user_agent.map(str::to_owned),
            detail: event.detail.map(str::to_owned),
            now: event.now,
        }
    }
}

struct Pending {
    revocation: OneRevocation,
    reply: oneshot::Sender<Result<u64, sqlx::Error>>,
}

/// Counters, for tests and for reading a benchmark.
#[derive(Debug, Default)]
pub struct GroupStats {
    /// Logouts handed to the committer.
    pub submitted: AtomicU64,
    /// Transactions it committed or tried, retries of a failed batch
    /// included.
    pub batches: AtomicU64,
    /// Batches that failed as a whole and were retried one by one.
    pub split: AtomicU64,
}

/// The committer of one SQLite writer. Its task starts with the first
/// logout, on that caller's runtime, and ends when the store is dropped.
#[derive(Debug)]
pub struct GroupCommit {
    writer: SqlitePool,
    queue: OnceLock<mpsc::Sender<Pending>>,
    pub(crate) stats: Arc<GroupStats>,
}

impl GroupCommit {
    pub fn new(writer: SqlitePool) -> GroupCommit {
        GroupCommit {
            writer,
            queue: OnceLock::new(),
            stats: Arc::default(),
        }
    }

    /// Ends one session as `revoke_recorded` does, committed with whatever
    /// other logouts are waiting for the writer. Returns the sessions ended
    /// (0 or 1).
    pub async fn revoke(&self, revocation: OneRevocation) -> Result<u64, sqlx::Error> {
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE);
            tokio::spawn(commit_loop(
                self.writer.clone(),
                receiver,
                self.stats.clone(),
            ));
            sender
        });
        let (reply, answer) = oneshot::channel();
        match queue.try_send(Pending { revocation, reply }) {
            Ok(()) => {
                self.stats.submitted.fetch_add(1, Ordering::Relaxed);
            }
            // A queue this long, or a committer whose runtime has ended (a
            // store outliving the runtime that first used it): the logout
            // commits alone instead.
            Err(TrySendError::Full(pending) | TrySendError::Closed(pending)) => {
                let mut connection = self.writer.acquire().await?;
                return Ok(apply(&mut connection, &[&pending.revocation]).await?[0]);
            }
        }
        // The committer answers every logout it takes, even when its caller
        // has gone; it drops a reply only when its runtime shuts down.
        answer.await.unwrap_or(Err(sqlx::Error::WorkerCrashed))
    }
}

async fn commit_loop(
    writer: SqlitePool,
    mut queue: mpsc::Receiver<Pending>,
    stats: Arc<GroupStats>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let outcomes = match writer.acquire().await {
            Ok(mut connection) => {
                // Those that came while the writer was busy join this commit.
                while batch.len() < MAX_BATCH {
                    match queue.try_recv() {
                        Ok(pending) => batch.push(pending),
                        Err(_) => break,
                    }
                }
                commit_batch(&mut connection, &batch, &stats).await
            }
            // Closed or timed out: the same for every logout waiting.
            Err(error) => {
                let closed = matches!(error, sqlx::Error::PoolClosed);
                let mut outcomes = vec![Err(error)];
                outcomes.extend((1..batch.len()).map(|_| {
                    Err(if closed {
                        sqlx::Error::PoolClosed
                    } else {
                        sqlx::Error::PoolTimedOut
                    })
                }));
                outcomes
            }
        };
        for (pending, outcome) in batch.drain(..).zip(outcomes) {
            // A caller that gave up does not need its answer.
            let _ = pending.reply.send(outcome);
        }
    }
}

/// Commits `batch` in one transaction, or each of its logouts in a
/// transaction of its own when that fails.
async fn commit_batch(
    connection: &mut SqliteConnection,
    batch: &[Pending],
    stats: &GroupStats,
) -> Vec<Result<u64, sqlx::Error>> {
    let revocations: Vec<&OneRevocation> =
        batch.iter().map(|pending| &pending.revocation).collect();
    stats.batches.fetch_add(1, Ordering::Relaxed);
    match apply(connection, &revocations).await {
        Ok(ended) => ended.into_iter().map(Ok).collect(),
        Err(error) if revocations.len() == 1 => vec![Err(error)],
        Err(_) => {
            stats.split.fetch_add(1, Ordering::Relaxed);
            let mut outcomes = Vec::with_capacity(revocations.len());
            for revocation in revocations {
                stats.batches.fetch_add(1, Ordering::Relaxed);
                outcomes.push(apply(connection, &[revocation]).await.map(|ended| ended[0]));
            }
            outcomes
        }
    }
}

/// Ends the sessions of `revocations` and records their audit rows, in one
/// transaction; for each, the sessions it ended.
async fn apply(
    connection: &mut SqliteConnection,
    revocations: &[&OneRevocation],
) -> Result<Vec<u64>, sqlx::Error> {
    // The first logout naming a session is the one that ends it.
    let mut first = HashMap::with_capacity(revocations.len());
    for (index, revocation) in revocations.iter().enumerate() {
        first.entry(revocation.session_id).or_insert(index);
    }
    let mut tx = connection.begin().await?;
    let mut update = QueryBuilder::<Sqlite>::new("WITH batch (id, at, reason) AS (");
    update.push_values(
        revocations
            .iter()
            .enumerate()
            .filter(|(index, revocation)| first[&revocation.session_id] == *index),
        |mut row, (_, revocation)| {
            row.push_bind(revocation.session_id)
                .push_bind(revocation.now)
                .push_bind(revocation.reason.as_str());
        },
    );
    update.push(
        ") UPDATE sessions SET revoked_at = batch.at, revoked_reason = batch.reason \
         FROM batch WHERE sessions.id = batch.id AND sessions.revoked_at IS NULL \
         RETURNING sessions.id",
    );
    let ended: HashSet<SessionId> = update
        .build_query_scalar::<SessionId>()
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
    let counts: Vec<u64> = revocations
        .iter()
        .enumerate()
        .map(|(index, revocation)| {
            u64::from(
                first[&revocation.session_id] == index && ended.contains(&revocation.session_id),
            )
        })
        .collect();
    let events: Vec<&OwnedEvent> = revocations
        .iter()
        .zip(&counts)
        .filter(|(revocation, ended)| **ended > 0 || revocation.record_always)
        .map(|(revocation, _)| &revocation.event)
        .collect();
    if !events.is_empty() {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO auth_events (occurred_at, kind, user_id, session_id, ip, user_agent, detail) ",
        );
        insert.push_values(events, |mut row, event| {
            row.push_bind(event.now)
                .push_bind(event.kind.as_str())
                .push_bind(event.user_id)
                .push_bind(event.session_id)
                .push_bind(event.ip.as_deref())
                .push_bind(event.user_agent.as_deref())
                .push_bind(event.detail.as_deref());
        });
        insert.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::db::{
        Pool, Store, StoreResult,
        sessions::Revocation,
        tests::{sqlite_store, user_with_sessions},
    };

    fn writer(store: &Store) -> &SqlitePool {
        match &store.pool {
            Pool::Sqlite { writer, .. } => writer,
            Pool::Postgres(_) => unreachable!("a SQLite store"),
        }
    }

    fn stats(store: &Store) -> &GroupStats {
        &store
            .group_commit
            .as_ref()
            .expect("SQLite commits in groups")
            .stats
    }

    async fn sessions(store: &Store, count: usize) -> (UserId, Vec<SessionId>) {
        user_with_sessions(store, "burst@example.com", count).await
    }

    /// A logout of `session` through the store, on a task of its own.
    fn spawn_logout(
        store: &Store,
        user: UserId,
        session: SessionId,
        detail: &'static str,
    ) -> tokio::task::JoinHandle<(SessionId, StoreResult<u64>)> {
        let store = store.clone();
        tokio::spawn(async move {
            let (session, event) = logout(user, session, detail);
            let ended = store
                .revoke_recorded(
                    Revocation::One(session),
                    RevokeReason::Logout,
                    event.now,
                    &event,
                    false,
                )
                .await;
            (session, ended)
        })
    }

    fn logout(
        user: UserId,
        session: SessionId,
        detail: &'static str,
    ) -> (SessionId, NewEvent<'static>) {
        let event = NewEvent {
            kind: EventKind::Logout,
            user_id: Some(user),
            session_id: Some(session),
            ip: Some("192.0.2.1"),
            user_agent: Some("burst"),
            detail: Some(detail),
            now: Timestamp::now(),
        };
        (session, event)
    }

    async fn count(store: &Store, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(writer(store))
            .await
            .unwrap()
    }

    /// Holds the writer connection until every one of `expected` logouts is
    /// waiting for the committer, then lets them through.
    async fn with_writer_held<T>(
        store: &Store,
        expected: u64,
        run: impl FnOnce() -> Vec<tokio::task::JoinHandle<T>>,
    ) -> Vec<T> {
        let held = writer(store).acquire().await.unwrap();
        let submitted_before = stats(store).submitted.load(Ordering::SeqCst);
        let tasks = run();
        while stats(store).submitted.load(Ordering::SeqCst) < submitted_before + expected {
            tokio::task::yield_now().await;
        }
        drop(held);
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        outcomes
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn logouts_waiting_for_the_writer_commit_together_each_with_its_own_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        let (user, ids) = sessions(&store, 40).await;
        // 40 sessions, 10 of them logged out twice at once.
        let targets: Vec<SessionId> = ids.iter().chain(&ids[..10]).copied().collect();
        let outcomes = with_writer_held(&store, 50, || {
            targets
                .iter()
                .map(|&session| spawn_logout(&store, user, session, "burst"))
                .collect()
        })
        .await;
        let mut ended = HashMap::<SessionId, u64>::new();
        for (session, outcome) in outcomes {
            *ended.entry(session).or_default() += outcome.expect("every logout commits");
        }
        assert_eq!(ended.len(), 40);
        assert!(
            ended.values().all(|&n| n == 1),
            "each session ended exactly once"
        );
        assert_eq!(
            stats(&store).batches.load(Ordering::SeqCst),
            1,
            "one commit"
        );
        for session in &ids {
            let live = store.active_session(*session, user, Timestamp::now()).await;
            assert!(live.unwrap().is_none());
        }
        // One audit row and one outbox event per ended session, not per call.
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM auth_events WHERE kind = 'logout'"
            )
            .await,
            40
        );
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(DISTINCT session_id) FROM session_events \
                 WHERE kind = 'revoked' AND reason = 'logout'"
            )
            .await,
            40
        );
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM session_events WHERE kind = 'revoked'"
            )
            .await,
            40
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_that_fails_is_retried_one_by_one_and_only_the_bad_logout_fails() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        let (user, ids) = sessions(&store, 5).await;
        sqlx::query(
            "CREATE TRIGGER poison BEFORE INSERT ON auth_events WHEN NEW.detail = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'poisoned audit row'); END",
        )
        .execute(writer(&store))
        .await
        .unwrap();
        let poisoned = ids[2];
        let outcomes = with_writer_held(&store, 5, || {
            ids.iter()
                .map(|&session| {
                    let detail = if session == poisoned {
                        "poison"
                    } else {
                        "fine"
                    };
                    spawn_logout(&store, user, session, detail)
                })
                .collect()
        })
        .await;
        for (session, outcome) in outcomes {
            if session == poisoned {
                let error = outcome.expect_err("its audit row cannot be written");
                assert!(!error.is_unavailable(), "a fault, not an outage: {error}");
                let cause = std::error::Error::source(&error).map(ToString::to_string);
                assert!(
                    cause.is_some_and(|cause| cause.contains("poisoned")),
                    "{error}"
                );
            } else {
                assert_eq!(outcome.expect("the others commit"), 1);
            }
        }
        let stats = stats(&store);
        assert_eq!(stats.split.load(Ordering::SeqCst), 1);
        assert_eq!(stats.batches.load(Ordering::SeqCst), 1 + 5);
        // The failed logout left nothing half-done: its session is live and
        // has no revocation event.
        let now = Timestamp::now();
        assert!(
            store
                .active_session(poisoned, user, now)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM session_events WHERE kind = 'revoked'"
            )
            .await,
            4
        );
        assert_eq!(count(&store, "SELECT COUNT(*) FROM auth_events").await, 4);
    }

    #[tokio::test]
    async fn a_logout_that_finds_the_writer_idle_commits_alone_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite_store(&dir).await;
        let (user, ids) = sessions(&store, 2).await;
        let mut ended = Vec::new();
        for session in [ids[0], ids[1], ids[0]] {
            let (session, event) = logout(user, session, "alone");
            ended.push(
                store
                    .revoke_recorded(
                        Revocation::One(session),
                        RevokeReason::Logout,
                        event.now,
                        &event,
                        true,
                    )
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(ended, [1, 1, 0]);
        assert_eq!(stats(&store).batches.load(Ordering::SeqCst), 3);
        // `record_always` writes the audit row of the no-op too.
        assert_eq!(count(&store, "SELECT COUNT(*) FROM auth_events").await, 3);
    }
}
