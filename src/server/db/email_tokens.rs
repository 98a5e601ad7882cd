//! Single-use links sent by email. Each change that spends one is a single
//! transaction that starts by spending it, conditionally: of two concurrent
//! uses of one link, exactly one succeeds.

use super::{
    NewEvent, RevokeReason, Store, StoreContext, StoreResult, UserId, mail::NewMail, on_pool,
};
use crate::server::time::Timestamp;

/// What a link is for; stored in `email_tokens.purpose`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkPurpose {
    PasswordReset,
}

impl LinkPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::PasswordReset => "password_reset",
        }
    }
}

/// A live link and whose it is.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LinkRecord {
    pub user_id: UserId,
    pub email: String,
}

/// A new link: stored as `token_hash`, sent in `mail`.
pub struct NewLink<'a> {
    pub user_id: UserId,
    pub purpose: LinkPurpose,
    pub token_hash: &'a [u8],
    pub now: Timestamp,
    pub expires_at: Timestamp,
    pub mail: &'a NewMail,
}

/// A password reset through a link: the link spent, the password replaced,
/// every session ended, the event and the notice written, in one commit.
pub struct LinkReset<'a> {
    pub token_hash: &'a [u8],
    pub user_id: UserId,
    pub new_password_hash: &'a str,
    pub now: Timestamp,
    pub event: NewEvent<'a>,
    pub notice: &'a NewMail,
}

const SPEND_LIVE_LINKS: &str = "UPDATE email_tokens SET used_at = $3 \
     WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL";

impl Store {
    /// Stores a link and queues the mail carrying it, and spends every
    /// earlier live link of the same purpose: only the newest one works.
    pub async fn issue_link(&self, link: &NewLink<'_>) -> StoreResult<()> {
        on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            sqlx::query(SPEND_LIVE_LINKS)
                .bind(link.user_id)
                .bind(link.purpose.as_str())
                .bind(link.now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO email_tokens (token_hash, user_id, purpose, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(link.token_hash)
            .bind(link.user_id)
            .bind(link.purpose.as_str())
            .bind(link.now)
            .bind(link.expires_at)
            .execute(&mut *tx)
            .await?;
            super::mail::insert_mail!(tx, link.mail, link.now).await?;
            tx.commit().await
        }.await)
        .context("Failed to store a link and queue its mail")
    }

    /// The owner of a live (unspent, unexpired) link.
    pub async fn find_link(
        &self,
        token_hash: &[u8],
        purpose: LinkPurpose,
        now: Timestamp,
    ) -> StoreResult<Option<LinkRecord>> {
        on_pool!(self, pool => sqlx::query_as(
            "SELECT t.user_id, u.email FROM email_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND t.purpose = $2 AND t.used_at IS NULL AND t.expires_at > $3",
        )
        .bind(token_hash)
        .bind(purpose.as_str())
        .bind(now)
        .fetch_optional(pool)
        .await)
        .context("Failed to look up a link")
    }

    /// Resets a password through a link. `None` when the link was spent or
    /// expired meanwhile (nothing changed); otherwise the sessions ended.
    pub async fn reset_password(&self, reset: &LinkReset<'_>) -> StoreResult<Option<u64>> {
        let purpose = LinkPurpose::PasswordReset.as_str();
        on_pool!(self, pool => async {
            let mut tx = pool.begin().await?;
            let spent = sqlx::query(
                "UPDATE email_tokens SET used_at = $4 WHERE token_hash = $1 AND user_id = $2 \
                 AND purpose = $3 AND used_at IS NULL AND expires_at > $4",
            )
            .bind(reset.token_hash)
            .bind(reset.user_id)
            .bind(purpose)
            .bind(reset.now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if spent != 1 {
                tx.rollback().await?;
                return Ok(None);
            }
            sqlx::query(super::users::SET_PASSWORD)
                .bind(reset.user_id)
                .bind(reset.new_password_hash)
                .bind(reset.now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(SPEND_LIVE_LINKS)
                .bind(reset.user_id)
                .bind(purpose)
                .bind(reset.now)
                .execute(&mut *tx)
                .await?;
            let ended = sqlx::query(
                "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 \
                 WHERE user_id = $1 AND revoked_at IS NULL",
            )
            .bind(reset.user_id)
            .bind(reset.now)
            .bind(RevokeReason::PasswordReset.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            super::events::bind_event(sqlx::query(super::events::INSERT_EVENT), &reset.event)
                .execute(&mut *tx)
                .await?;
            super::mail::insert_mail!(tx, reset.notice, reset.now).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(Some(ended))
        }.await)
        .context("Failed to reset a password")
    }
}

/// Spends the user's live password-reset links inside a password change's
/// transaction: a link mailed before the change must not undo it.
pub(super) const SPEND_RESET_LINKS: &str = "UPDATE email_tokens SET used_at = $2 \
     WHERE user_id = $1 AND purpose = 'password_reset' AND used_at IS NULL";
