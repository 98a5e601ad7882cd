//! What live sign-out reads: the ends of sessions as the event source
//! records them (`session_events`, kind `revoked`), and which of a set of
//! sessions are still live.

use std::collections::HashSet;

use super::{SessionId, Store, StoreContext, StoreResult, on_pool};
use crate::server::time::Timestamp;

/// An event of the source, as a tail reads it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SourceEvent {
    pub id: i64,
    pub kind: String,
    pub session_id: Option<SessionId>,
    /// For `revoked`: `sessions.revoked_reason`, or `expired` for a session
    /// the sweeper removed.
    pub reason: Option<String>,
}

/// Sessions asked about in one statement (well under both engines' limits
/// on bound parameters).
const CHUNK: usize = 500;

impl Store {
    /// The newest event's id: where a tail of the event source starts.
    pub async fn last_session_event_id(&self) -> StoreResult<i64> {
        on_pool!(self, pool => sqlx::query_scalar::<_, i64>(
            "SELECT COALESCE(MAX(id), 0) FROM session_events",
        )
        .fetch_one(pool)
        .await)
        .context("Failed to read the event source's position")
    }

    /// The events recorded after event `after`, oldest first, at most
    /// `limit` of them. Only a source whose ids are assigned in commit order
    /// (SQLite: one writer at a time) can be tailed this way.
    pub async fn session_events_after(
        &self,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<SourceEvent>> {
        on_pool!(self, pool => sqlx::query_as(
            "SELECT id, kind, session_id, reason FROM session_events \
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await)
        .context("Failed to read the event source")
    }

    /// Of `ids`, the sessions still live at `now` (not revoked, not expired,
    /// not deleted).
    pub async fn live_sessions_among(
        &self,
        ids: &[SessionId],
        now: Timestamp,
    ) -> StoreResult<HashSet<SessionId>> {
        let mut live = HashSet::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let list = (2..chunk.len() + 2)
                .map(|n| format!("${n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT id FROM sessions WHERE revoked_at IS NULL AND expires_at > $1 \
                 AND id IN ({list})"
            );
            let found: Vec<SessionId> = on_pool!(self, pool => {
                let mut query = sqlx::query_scalar(&sql).bind(now);
                for id in chunk {
                    query = query.bind(*id);
                }
                query.fetch_all(pool).await
            })
            .context("Failed to check sessions")?;
            live.extend(found);
        }
        Ok(live)
    }
}
