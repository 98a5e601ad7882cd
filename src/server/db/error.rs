//! Storage failures, classified once, here.
//!
//! Callers act on one distinction: the database cannot be reached right now
//! (answer 503, keep everyone signed in, retry later), or something else
//! went wrong (a real fault, 500). Every `Store` method says which, so no
//! one above this module inspects a `sqlx::Error`.

use std::error::Error as StdError;

pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connecting failed, the connection broke, the pool timed out or was
    /// closed, or SQLite's worker went away.
    #[error("{action}: the database is unavailable")]
    Unavailable {
        action: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("{action}")]
    Failed {
        action: &'static str,
        #[source]
        source: BoxError,
    },
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }

    fn from_sqlx(action: &'static str, error: sqlx::Error) -> StoreError {
        if means_unavailable(&error) {
            StoreError::Unavailable {
                action,
                source: Box::new(error),
            }
        } else {
            StoreError::Failed {
                action,
                source: Box::new(error),
            }
        }
    }
}

/// The one list of errors that mean "not reachable now" rather than "wrong".
fn means_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(error) => error
            .code()
            .is_some_and(|code| BUSY_CODES.contains(&code.as_ref())),
        _ => false,
    }
}

/// Database error codes that mean the database is busy or going away, not
/// that the statement is wrong: PostgreSQL's `query_canceled` (our
/// `statement_timeout`), `lock_not_available` (`lock_timeout`),
/// `too_many_connections`, `admin_shutdown`, `crash_shutdown` and
/// `cannot_connect_now`; SQLite's `SQLITE_BUSY` and `SQLITE_LOCKED` (our
/// `busy_timeout` ran out), with their extended codes.
const BUSY_CODES: [&str; 12] = [
    "57014", "55P03", "53300", "57P01", "57P02", "57P03", // PostgreSQL
    "5", "261", "517", "773", "6", "262", // SQLite
];

/// `.context("Failed to …")` for storage results: names the action and
/// classifies the failure.
pub(crate) trait StoreContext<T> {
    fn context(self, action: &'static str) -> StoreResult<T>;
}

impl<T> StoreContext<T> for Result<T, sqlx::Error> {
    fn context(self, action: &'static str) -> StoreResult<T> {
        self.map_err(|error| StoreError::from_sqlx(action, error))
    }
}

impl<T> StoreContext<T> for Result<T, sqlx::migrate::MigrateError> {
    fn context(self, action: &'static str) -> StoreResult<T> {
        self.map_err(|error| match error {
            sqlx::migrate::MigrateError::Execute(error) => StoreError::from_sqlx(action, error),
            other => StoreError::Failed {
                action,
                source: Box::new(other),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_trouble_is_unavailable_and_everything_else_is_a_failure() {
        let io = || std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for error in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(io()),
            sqlx::Error::WorkerCrashed,
        ] {
            assert!(
                Err::<(), _>(error)
                    .context("Failed to test")
                    .unwrap_err()
                    .is_unavailable()
            );
        }
        for error in [
            sqlx::Error::RowNotFound,
            sqlx::Error::ColumnNotFound("x".into()),
        ] {
            assert!(
                !Err::<(), _>(error)
                    .context("Failed to test")
                    .unwrap_err()
                    .is_unavailable()
            );
        }
        let migration = sqlx::migrate::MigrateError::Execute(sqlx::Error::Io(io()));
        assert!(
            Err::<(), _>(migration)
                .context("Failed to migrate")
                .unwrap_err()
                .is_unavailable()
        );
        let missing = sqlx::migrate::MigrateError::VersionMissing(3);
        assert!(
            !Err::<(), _>(missing)
                .context("Failed to migrate")
                .unwrap_err()
                .is_unavailable()
        );
    }

    #[test]
    fn the_message_names_the_action_and_keeps_the_cause() {
        let error = Err::<(), _>(sqlx::Error::PoolTimedOut)
            .context("Failed to check a session")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "Failed to check a session: the database is unavailable"
        );
        assert!(error.source().is_some());
    }
}
