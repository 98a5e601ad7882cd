//! What operators do to accounts (`service::Admin`): list them, end their
//! sessions, disable, enable and erase them. Each change is one transaction
//! with its audit event, so an instance that checks a session on the next
//! request sees it, whichever process (a CLI, another instance) made it.

use super::{
    NewEvent, RevokeReason, SessionId, Store, StoreContext, StoreResult, UserId, on_pool, on_writer,
};
use crate::server::time::Timestamp;

/// A user as an operator lists them.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserSummary {
    pub id: UserId,
    pub email: String,
    pub created_at: Timestamp,
    /// The most recent password (or link) proof on any session kept.
    pub last_sign_in: Option<Timestamp>,
    pub live_sessions: i64,
    pub email_verified: bool,
    pub disabled_at: Option<Timestamp>,
    pub disabled_reason: Option<String>,
}

/// A session as an operator sees it: ended ones too, and why.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AdminSession {
    pub id: SessionId,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: Timestamp,
    pub last_used_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub revoked_reason: Option<String>,
}

impl AdminSession {
    /// `live`, or `ended: <why>` (the stored reason, or `expired`).
    pub fn state(&self, now: Timestamp) -> String {
        match (&self.revoked_at, &self.revoked_reason) {
            (Some(_), Some(reason)) => format!("ended: {reason}"),
            (Some(_), None) => "ended".to_string(),
            (None, _) if self.expires_at <= now => "ended: expired".to_string(),
            (None, _) => "live".to_string(),
        }
    }

    pub fn is_live(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

/// An admin API key as listed: never its secret.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// The throttle counters keyed by an address (see `service::Throttle`).
const ADDRESS_KEY_PREFIXES: [&str; 6] = [
    "account:",
    "backstop:",
    "mail-email:",
    "verify-email:",
    "change-email:",
    "register-email:",
];

/// `text` as a `LIKE … ESCAPE '\'` pattern that matches it literally.
fn like_literal(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Writes `event` in the transaction and commits it: every operator action
/// is recorded in the commit that makes it.
macro_rules! commit_with_event {
    ($tx:expr, $event:expr) => {
        super::events::bind_event(sqlx::query(super::events::INSERT_EVENT), $event)
            .execute(&mut *$tx)
            .await?;
        $tx.commit().await?;
    };
}

/// What an erasure leaves of the account's events in the outbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErasedEvents {
    /// Nothing (no webhook endpoint: no one is told).
    Drop,
    /// Its `user.deleted` and its sessions' pending `session.revoked`, which
    /// carry the account's id and nothing else that names it, so that the
    /// services it is reported to can erase too; they go once delivered
    /// and pruned.
    Report,
}

const REVOKE_ALL: &str = "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 \
     WHERE user_id = $1 AND revoked_at IS NULL";

impl Store {
    /// Users whose address contains `search` (any case), oldest first, at
    /// most `limit`, after the user `after` (the last of the previous page).
    pub async fn list_users(
        &self,
        search: Option<&str>,
        after: Option<UserId>,
        limit: i64,
        now: Timestamp,
    ) -> StoreResult<Vec<UserSummary>> {
        let pattern = format!(
            "%{}%",
            like_literal(&search.unwrap_or_default().to_lowercase())
        );
        let select = "SELECT u.id, u.email, u.created_at, \
             (SELECT MAX(s.authenticated_at) FROM sessions s WHERE s.user_id = u.id) AS last_sign_in, \
             (SELECT COUNT(*) FROM sessions s WHERE s.user_id = u.id \
              AND s.revoked_at IS NULL AND s.expires_at > $2) AS live_sessions, \
             u.email_verified_at IS NOT NULL AS email_verified, u.disabled_at, u.disabled_reason \
             FROM users u \
             WHERE (LOWER(u.email) LIKE $1 ESCAPE '\\' OR u.email_normalized LIKE $1 ESCAPE '\\') ";
        let order = " ORDER BY u.created_at, u.email_normalized LIMIT $3";
        let sql = match after {
            None => format!("{select}{order}"),
            Some(_) => format!(
                "{select} AND (u.created_at, u.email_normalized) > \
                 (SELECT c.created_at, c.email_normalized FROM users c WHERE c.id = $4){order}"
            ),
        };
        on_pool!(self, pool => {
            let query = sqlx::query_as(&sql).bind(&pattern).bind(now).bind(limit);
            match after {
                Some(after) => query.bind(after),
                None => query,
            }
            .fetch_all(pool)
            .await
        })
        .context("Failed to list users")
    }

    /// Every session kept for the user, newest first.
    pub async fn all_sessions(&self, user_id: UserId) -> StoreResult<Vec<AdminSession>> {
        on_pool!(self, pool => sqlx::query_as(
            "SELECT id, user_agent, ip, created_at, last_used_at, expires_at, revoked_at, \
             revoked_reason FROM sessions WHERE user_id = $1 ORDER BY created_at DESC",
        )
        .bind(user_id)
        .fetch_all(pool)
        .await)
        .context("Failed to list a user's sessions")
    }

    /// Ends every live session of the user, with `event`; how many ended.
    pub async fn admin_sign_out(
        &self,
        user_id: UserId,
        now: Timestamp,
        event: &NewEvent<'_>,
    ) -> StoreResult<u64> {
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let ended = sqlx::query(REVOKE_ALL)
                .bind(user_id)
                .bind(now)
                .bind(RevokeReason::Admin.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            commit_with_event!(tx, event);
            Ok::<_, sqlx::Error>(ended)
        }.await)
        .context("Failed to sign a user out")
    }

    /// Disables the account: marks it (a sign-in that checks the password
    /// concurrently finds it disabled when it creates its session, see
    /// `create_session`), ends every live session and spends every emailed
    /// link, with `event`. `None` when it was disabled already (nothing
    /// changed); otherwise how many sessions ended.
    pub async fn disable_user(
        &self,
        user_id: UserId,
        reason: Option<&str>,
        now: Timestamp,
        event: &NewEvent<'_>,
    ) -> StoreResult<Option<u64>> {
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let marked = sqlx::query(
                "UPDATE users SET disabled_at = $2, disabled_reason = $3 \
                 WHERE id = $1 AND disabled_at IS NULL",
            )
            .bind(user_id)
            .bind(now)
            .bind(reason)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if marked == 0 {
                tx.rollback().await?;
                return Ok(None);
            }
            let ended = sqlx::query(REVOKE_ALL)
                .bind(user_id)
                .bind(now)
                .bind(RevokeReason::Admin.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query(
                "UPDATE email_tokens SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL",
            )
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            commit_with_event!(tx, event);
            Ok::<_, sqlx::Error>(Some(ended))
        }.await)
        .context("Failed to disable a user")
    }

    /// Lifts a disable, with `event`; `false` when it was not disabled.
    pub async fn enable_user(&self, user_id: UserId, event: &NewEvent<'_>) -> StoreResult<bool> {
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let lifted = sqlx::query(
                "UPDATE users SET disabled_at = NULL, disabled_reason = NULL \
                 WHERE id = $1 AND disabled_at IS NOT NULL",
            )
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if lifted == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            commit_with_event!(tx, event);
            Ok::<_, sqlx::Error>(true)
        }.await)
        .context("Failed to enable a user")
    }

    /// Erases the user and everything that names them, in one commit: the
    /// row (and by cascade its sessions, refresh tokens and links), the
    /// throttle counters keyed by the address, the audit events that are
    /// theirs or mention the address, queued mail to it and other accounts'
    /// pending moves to it. Then writes `event`, which must name neither.
    /// Its live sessions end first (reason `admin`); `outbox` says what of
    /// its events stays to be reported. `false` when there was no such user.
    pub async fn erase_user(
        &self,
        user_id: UserId,
        email_normalized: &str,
        event: &NewEvent<'_>,
        outbox: ErasedEvents,
    ) -> StoreResult<bool> {
        let keys: Vec<String> = ADDRESS_KEY_PREFIXES
            .iter()
            .map(|prefix| format!("{prefix}{email_normalized}"))
            .collect();
        let mentions = format!("%{}%", like_literal(email_normalized));
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let mut throttle = sqlx::query(
                "DELETE FROM login_throttle WHERE key IN ($1, $2, $3, $4, $5, $6)",
            );
            for key in &keys {
                throttle = throttle.bind(key);
            }
            throttle.execute(&mut *tx).await?;
            sqlx::query(
                "DELETE FROM auth_events WHERE user_id = $1 \
                 OR LOWER(detail) LIKE $2 ESCAPE '\\' \
                 OR session_id IN (SELECT id FROM sessions WHERE user_id = $1)",
            )
            .bind(user_id)
            .bind(&mentions)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM mail_outbox WHERE LOWER(recipient) = $1")
                .bind(email_normalized)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM email_tokens WHERE new_email_normalized = $1")
                .bind(email_normalized)
                .execute(&mut *tx)
                .await?;
            // Live sessions end as an operator's sign-out would (their
            // `session.revoked` events say `admin`, not `expired`).
            sqlx::query(REVOKE_ALL)
                .bind(user_id)
                .bind(event.now)
                .bind(RevokeReason::Admin.as_str())
                .execute(&mut *tx)
                .await?;
            let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            // After the row: the triggers wrote its `user.deleted` and the
            // sessions' ends, which name the user too.
            let outbox_rows = match outbox {
                ErasedEvents::Drop => "DELETE FROM session_events WHERE user_id = $1",
                ErasedEvents::Report => {
                    "DELETE FROM session_events WHERE user_id = $1 \
                     AND (kind NOT IN ('revoked', 'deleted') \
                          OR delivered_at IS NOT NULL OR dead_at IS NOT NULL)"
                }
            };
            sqlx::query(outbox_rows)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE session_events SET ip = NULL, user_agent = NULL WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            commit_with_event!(tx, event);
            Ok::<_, sqlx::Error>(true)
        }.await)
        .context("Failed to erase a user")
    }
}

impl Store {
    /// Stores a new admin API key, with `event`; `false` when a live key
    /// has that name already.
    pub async fn insert_api_key(
        &self,
        id: &str,
        name: &str,
        secret_hash: &[u8],
        now: Timestamp,
        event: &NewEvent<'_>,
    ) -> StoreResult<bool> {
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO admin_api_keys (id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(id)
            .bind(name)
            .bind(secret_hash)
            .bind(now)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Err(other) => return Err(other),
            }
            commit_with_event!(tx, event);
            Ok::<_, sqlx::Error>(true)
        }.await)
        .context("Failed to store an API key")
    }

    /// Every admin API key, revoked ones too, oldest first.
    pub async fn list_api_keys(&self) -> StoreResult<Vec<ApiKeyRecord>> {
        on_pool!(self, pool => sqlx::query_as(
            "SELECT id, name, created_at, last_used_at, revoked_at FROM admin_api_keys \
             ORDER BY created_at, name",
        )
        .fetch_all(pool)
        .await)
        .context("Failed to list API keys")
    }

    /// Revokes the live key called `name`, with `event`; `false` when there
    /// is none.
    pub async fn revoke_api_key(
        &self,
        name: &str,
        now: Timestamp,
        event: &NewEvent<'_>,
    ) -> StoreResult<bool> {
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let revoked = sqlx::query(
                "UPDATE admin_api_keys SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL",
            )
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if revoked == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            commit_with_event!(tx, event);
            Ok::<_, sqlx::Error>(true)
        }.await)
        .context("Failed to revoke an API key")
    }

    /// The name and secret hash of the live key `id`, marking it used.
    pub async fn use_api_key(
        &self,
        id: &str,
        now: Timestamp,
    ) -> StoreResult<Option<(String, Vec<u8>)>> {
        on_writer!(self, pool => sqlx::query_as(
            "UPDATE admin_api_keys SET last_used_at = $2 WHERE id = $1 AND revoked_at IS NULL \
             RETURNING name, secret_hash",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(pool)
        .await)
        .context("Failed to look up an API key")
    }

    /// Ends one session (any user's), with `event`; its owner, or `None`
    /// when no such live session exists.
    pub async fn admin_revoke_session(
        &self,
        session_id: SessionId,
        now: Timestamp,
        event: &NewEvent<'_>,
    ) -> StoreResult<Option<UserId>> {
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let owner: Option<UserId> = sqlx::query_scalar(
                "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 \
                 WHERE id = $1 AND revoked_at IS NULL RETURNING user_id",
            )
            .bind(session_id)
            .bind(now)
            .bind(RevokeReason::Admin.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            let Some(owner) = owner else {
                tx.rollback().await?;
                return Ok(None);
            };
            let event = NewEvent { user_id: Some(owner), session_id: Some(session_id), ..*event };
            commit_with_event!(tx, &event);
            Ok::<_, sqlx::Error>(Some(owner))
        }.await)
        .context("Failed to revoke a session")
    }
}

#[cfg(test)]
mod tests {
    use super::like_literal;

    #[test]
    fn like_patterns_match_addresses_literally() {
        assert_eq!(like_literal("a_b%c\\d@x.com"), "a\\_b\\%c\\\\d@x.com");
        assert_eq!(like_literal("plain@example.com"), "plain@example.com");
    }
}
