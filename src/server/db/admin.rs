//! What operators do to accounts (`service::Admin`): list them, end their
//! sessions, disable, enable and erase them. Each change is one transaction
//! with its audit event, so an instance that checks a session on the next
//! request sees it, whichever process (a CLI, another instance) made it.

use super::{NewEvent, RevokeReason, SessionId, Store, StoreContext, StoreResult, UserId, on_pool};
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

const REVOKE_ALL: &str = "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 \
     WHERE user_id = $1 AND revoked_at IS NULL";

impl Store {
    /// Users whose address contains `search` (any case), oldest first, at
    /// most `limit`.
    pub async fn list_users(
        &self,
        search: Option<&str>,
        limit: i64,
        now: Timestamp,
    ) -> StoreResult<Vec<UserSummary>> {
        let pattern = format!(
            "%{}%",
            like_literal(&search.unwrap_or_default().to_lowercase())
        );
        on_pool!(self, pool => sqlx::query_as(
            "SELECT u.id, u.email, u.created_at, \
             (SELECT MAX(s.authenticated_at) FROM sessions s WHERE s.user_id = u.id) AS last_sign_in, \
             (SELECT COUNT(*) FROM sessions s WHERE s.user_id = u.id \
              AND s.revoked_at IS NULL AND s.expires_at > $2) AS live_sessions, \
             u.email_verified_at IS NOT NULL AS email_verified, u.disabled_at, u.disabled_reason \
             FROM users u \
             WHERE LOWER(u.email) LIKE $1 ESCAPE '\\' OR u.email_normalized LIKE $1 ESCAPE '\\' \
             ORDER BY u.created_at, u.email_normalized LIMIT $3",
        )
        .bind(&pattern)
        .bind(now)
        .bind(limit)
        .fetch_all(pool)
        .await)
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
        on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let ended = sqlx::query(REVOKE_ALL)
                .bind(user_id)
                .bind(now)
                .bind(RevokeReason::Admin.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            super::events::bind_event(sqlx::query(super::events::INSERT_EVENT), event)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
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
        on_pool!(self, pool => async {
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
            super::events::bind_event(sqlx::query(super::events::INSERT_EVENT), event)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(Some(ended))
        }.await)
        .context("Failed to disable a user")
    }

    /// Lifts a disable, with `event`; `false` when it was not disabled.
    pub async fn enable_user(&self, user_id: UserId, event: &NewEvent<'_>) -> StoreResult<bool> {
        on_pool!(self, pool => async {
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
            super::events::bind_event(sqlx::query(super::events::INSERT_EVENT), event)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(true)
        }.await)
        .context("Failed to enable a user")
    }

    /// Erases the user and everything that names them, in one commit: the
    /// row (and by cascade its sessions, refresh tokens and links), the
    /// throttle counters keyed by the address, the audit events that are
    /// theirs or mention the address, queued mail to it and other accounts'
    /// pending moves to it. Then writes `event`, which must name neither.
    /// `false` when there was no such user.
    pub async fn erase_user(
        &self,
        user_id: UserId,
        email_normalized: &str,
        event: &NewEvent<'_>,
    ) -> StoreResult<bool> {
        let keys: Vec<String> = ADDRESS_KEY_PREFIXES
            .iter()
            .map(|prefix| format!("{prefix}{email_normalized}"))
            .collect();
        let mentions = format!("%{}%", like_literal(email_normalized));
        on_pool!(self, pool => async {
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
            let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            super::events::bind_event(sqlx::query(super::events::INSERT_EVENT), event)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(true)
        }.await)
        .context("Failed to erase a user")
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
