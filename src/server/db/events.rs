use super::{StoreContext, StoreResult};

use super::{EventRecord, NewEvent, SessionId, Store, UserId, on_pool, on_writer};
use crate::server::time::Timestamp;

pub(super) const INSERT_EVENT: &str = "INSERT INTO auth_events \
     (occurred_at, kind, user_id, session_id, ip, user_agent, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Binds `event` to [`INSERT_EVENT`], on either engine.
pub(super) fn bind_event<'q, DB>(
    query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    event: &NewEvent<'q>,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    Timestamp: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<UserId>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<SessionId>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    query
        .bind(event.now)
        .bind(event.kind.as_str())
        .bind(event.user_id)
        .bind(event.session_id)
        .bind(event.ip)
        .bind(event.user_agent)
        .bind(event.detail)
}

impl Store {
    pub async fn record_event(&self, event: &NewEvent<'_>) -> StoreResult<()> {
        on_writer!(self, pool => bind_event(sqlx::query(INSERT_EVENT), event)
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))
        .map(drop)
        .context("Failed to record an audit event")
    }

    /// The user's most recent events, newest first.
    pub async fn recent_events(
        &self,
        user_id: UserId,
        limit: i64,
    ) -> StoreResult<Vec<EventRecord>> {
        on_pool!(self, pool => sqlx::query_as(
            "SELECT occurred_at, kind, session_id, ip, user_agent, detail FROM auth_events \
             WHERE user_id = $1 ORDER BY occurred_at DESC, id DESC LIMIT $2",
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(pool)
        .await)
        .context("Failed to read recent events")
    }

    /// Every event of a kind, oldest first; for tests and investigations.
    pub async fn events_of_kind(&self, kind: &str) -> StoreResult<Vec<EventRecord>> {
        on_pool!(self, pool => sqlx::query_as(
            "SELECT occurred_at, kind, session_id, ip, user_agent, detail FROM auth_events \
             WHERE kind = $1 ORDER BY id",
        )
        .bind(kind)
        .fetch_all(pool)
        .await)
        .context("Failed to read events")
    }
}
