//! The mail outbox: messages written in the transaction of what caused them,
//! claimed by one delivery worker at a time (on any instance), deleted once
//! delivered.

use std::time::Duration;

use super::{Store, StoreContext, StoreResult, on_writer};
use crate::server::time::Timestamp;

/// A message to send. Its bodies may hold a single-use link: the row is
/// deleted as soon as the message is handed over.
#[derive(Clone)]
pub struct NewMail {
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
}

impl std::fmt::Debug for NewMail {
    /// Never the bodies: they may carry a link that signs someone in.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMail")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// A claimed message, leased to the worker that claimed it.
#[derive(Clone, sqlx::FromRow)]
pub struct OutboxMail {
    pub id: i64,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    /// Attempts including this one.
    pub attempts: i32,
}

impl std::fmt::Debug for OutboxMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxMail")
            .field("id", &self.id)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

pub(super) const INSERT_MAIL: &str = "INSERT INTO mail_outbox \
     (created_at, recipient, subject, text_body, html_body, next_attempt_at) \
     VALUES ($1, $2, $3, $4, $5, $1)";

/// Writes `mail` to the outbox inside the caller's transaction.
macro_rules! insert_mail {
    ($tx:expr, $mail:expr, $now:expr) => {
        sqlx::query($crate::server::db::mail::INSERT_MAIL)
            .bind($now)
            .bind(&$mail.recipient)
            .bind(&$mail.subject)
            .bind(&$mail.text_body)
            .bind(&$mail.html_body)
            .execute(&mut *$tx)
    };
}
pub(super) use insert_mail;

impl Store {
    /// Claims the oldest due message for `lease`: until then no other worker
    /// takes it, and if this one dies it is due again afterwards. The
    /// re-check of `next_attempt_at` in the outer statement makes two
    /// concurrent claims of one row (PostgreSQL re-evaluates it on the row
    /// the first claim updated) give it to one of them only.
    pub async fn claim_mail(
        &self,
        now: Timestamp,
        lease: Duration,
    ) -> StoreResult<Option<OutboxMail>> {
        on_writer!(self, pool => sqlx::query_as(
            "UPDATE mail_outbox SET next_attempt_at = $2, attempts = attempts + 1 \
             WHERE id = (SELECT id FROM mail_outbox WHERE next_attempt_at <= $1 \
                         ORDER BY next_attempt_at, id LIMIT 1) \
             AND next_attempt_at <= $1 \
             RETURNING id, recipient, subject, text_body, html_body, attempts",
        )
        .bind(now)
        .bind(now.plus(lease))
        .fetch_optional(pool)
        .await)
        .context("Failed to claim a queued mail")
    }

    /// A message was handed over: it leaves the database, link and all.
    pub async fn mail_delivered(&self, id: i64) -> StoreResult<()> {
        on_writer!(self, pool => sqlx::query("DELETE FROM mail_outbox WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(drop))
        .context("Failed to remove a delivered mail")
    }

    /// A delivery failed: try again at `retry_at`.
    pub async fn mail_failed(&self, id: i64, retry_at: Timestamp, error: &str) -> StoreResult<()> {
        on_writer!(self, pool => sqlx::query(
            "UPDATE mail_outbox SET next_attempt_at = $2, last_error = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(retry_at)
        .bind(error)
        .execute(pool)
        .await
        .map(drop))
        .context("Failed to reschedule a mail")
    }
}
