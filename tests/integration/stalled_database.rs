//! A stalled database: a lock held elsewhere must not hold requests. Every
//! statement runs under the configured budget (PostgreSQL `statement_timeout`
//! and `lock_timeout`, SQLite `busy_timeout`), so a request that already has
//! a connection answers 503 within it, like one that is still waiting for a
//! connection, and nothing changes.

use crate::helpers::*;
use reqwest::StatusCode;
use sqlx::Connection;
use std::time::Duration;

/// Generous: each request needs at most the acquire wait plus one statement
/// budget (1 s each here). Only a request that waits for the lock itself
/// (the old behaviour) gets anywhere near it, because the lock is held until
/// every answer is in.
const ANSWER_DEADLINE: Duration = Duration::from_secs(30);

/// Holds the database's write lock (SQLite) or an exclusive lock on the
/// sessions table (PostgreSQL) until dropped or `release`d.
enum HeldLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl HeldLock {
    async fn take(app: &TestApp) -> HeldLock {
        let url = app.env.database_url.clone();
        match app.env.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&url)
                    .await
                    .expect("connect");
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut conn)
                    .await
                    .expect("lock");
                HeldLock::Sqlite(conn)
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
                sqlx::query("BEGIN")
                    .execute(&mut conn)
                    .await
                    .expect("begin");
                sqlx::query("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
                    .execute(&mut conn)
                    .await
                    .expect("lock");
                HeldLock::Postgres(conn)
            }
        }
    }

    async fn release(self) {
        match self {
            HeldLock::Sqlite(mut conn) => {
                sqlx::query("ROLLBACK")
                    .execute(&mut conn)
                    .await
                    .expect("unlock");
            }
            HeldLock::Postgres(mut conn) => {
                sqlx::query("ROLLBACK")
                    .execute(&mut conn)
                    .await
                    .expect("unlock");
            }
        }
    }
}

async fn requests_answer_503_while_a_lock_stalls_the_database(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_DB_STATEMENT_TIMEOUT", "1s")
        .with("PORTCULLIS_DB_ACQUIRE_TIMEOUT", "1s")
        .with("PORTCULLIS_DB_MAX_CONNECTIONS", "4")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    let (access, _) = app.bearer_login(&email, PASSWORD).await;
    let lock = HeldLock::take(&app).await;

    // Reads of the session (PostgreSQL: the table is locked) and writes
    // (both engines) at once, more than the pool has connections.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let request = if i % 2 == 0 {
            plain_client().get(app.url("/auth/me"))
        } else {
            plain_client().post(app.url("/auth/logout?scope=global"))
        }
        .bearer_auth(&access);
        tasks.push(tokio::spawn(async move {
            let response = request.send().await.expect("an answer");
            error_code(response).await
        }));
    }
    let answers = tokio::time::timeout(ANSWER_DEADLINE, async {
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.expect("the request task finishes"));
        }
        answers
    })
    .await
    .expect("every request answers while the lock is still held");
    lock.release().await;

    let unavailable = (StatusCode::SERVICE_UNAVAILABLE, "unavailable".to_string());
    for (i, answer) in answers.iter().enumerate() {
        let expected = match (backend, i % 2) {
            // WAL readers are not blocked by the writer: the check succeeds,
            // unless the stalled writes hold every connection for longer
            // than a reader waits for one, which is a clean 503 as well.
            (Backend::Sqlite, 0) if *answer == unavailable => unavailable.clone(),
            (Backend::Sqlite, 0) => (StatusCode::OK, String::new()),
            (_, 0) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable".into()),
            // The logout contract's answer when the session could not be
            // revoked (see `logout.rs`): it answers, and says so.
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "logout_failed".into()),
        };
        assert_eq!(*answer, expected, "request {i}");
    }
    // Nothing was half-done: the session is intact and still ends normally.
    assert_eq!(app.bearer_me(&access).await.status(), StatusCode::OK);
    let logout = plain_client()
        .post(app.url("/auth/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    assert_eq!(
        app.bearer_me(&access).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

backend_tests!(requests_answer_503_while_a_lock_stalls_the_database);
