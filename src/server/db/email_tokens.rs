//! Single-use links sent by email. Each change that spends one is a single
//! transaction that starts by spending it, conditionally: of two concurrent
//! uses of one link, exactly one succeeds.

use super::{
    NewEvent, NewUser, RevokeReason, SessionId, Store, StoreContext, StoreResult, UserId,
    mail::NewMail, on_pool, on_writer,
};
use crate::server::time::Timestamp;

/// What a link is for; stored in `email_tokens.purpose`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkPurpose {
    PasswordReset,
    /// Confirms the account's address (sent at registration, or again).
    VerifyEmail,
    /// Confirms a new address for the account; the change happens then.
    ChangeEmail,
}

impl LinkPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::PasswordReset => "password_reset",
            LinkPurpose::VerifyEmail => "verify_email",
            LinkPurpose::ChangeEmail => "change_email",
        }
    }
}

/// The address an email-change link moves the account to, and the session
/// that asked (it stays signed in when the change is confirmed).
#[derive(Clone, Copy, Debug)]
pub struct EmailTarget<'a> {
    pub email: &'a str,
    pub email_normalized: &'a str,
    pub requested_by: SessionId,
}

/// What a registration did. Both are answered alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registration {
    /// The account was created and its verification link queued.
    Created,
    /// The address already had this account; its owner was told instead.
    Taken(UserId),
}

/// A confirmed email change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmailChange {
    Changed {
        user_id: UserId,
        /// The new address, as typed.
        email: String,
        /// The session that asked, left signed in (if it still was).
        kept: Option<SessionId>,
        /// Sessions ended: every one but the one that asked.
        ended: u64,
    },
    /// The link was spent or had expired (nothing changed).
    InvalidLink,
    /// The address was taken by another account after the link was sent
    /// (nothing changed, and the link stays spent).
    Taken,
}

/// A live link and whose it is.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LinkRecord {
    pub user_id: UserId,
    pub email: String,
}

/// A new link: stored as `token_hash`, sent in `mail` (and `also`, other
/// mail the same request causes, such as the notice to the old address of
/// an email change).
pub struct NewLink<'a> {
    pub user_id: UserId,
    pub purpose: LinkPurpose,
    pub token_hash: &'a [u8],
    pub now: Timestamp,
    pub expires_at: Timestamp,
    pub mail: &'a NewMail,
    pub also: Option<&'a NewMail>,
    pub target: Option<EmailTarget<'a>>,
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

/// Spends a live link of `$2`'s purpose (`$1` its hash, `$3` now) and names
/// its owner: the first statement of every transaction that uses one.
const SPEND_LINK: &str = "UPDATE email_tokens SET used_at = $3 \
     WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 \
     RETURNING user_id";

/// Spends the live link `$hash` of `$purpose` inside the caller's
/// transaction: its owner, or `None` when it was spent or expired.
macro_rules! spend_link {
    ($tx:expr, $hash:expr, $purpose:expr, $now:expr) => {
        sqlx::query_scalar::<_, UserId>(SPEND_LINK)
            .bind($hash)
            .bind($purpose)
            .bind($now)
            .fetch_optional(&mut *$tx)
    };
}

/// Writes `link` and its mail inside the caller's transaction, spending the
/// earlier live links of its purpose.
macro_rules! insert_link {
    ($tx:expr, $link:expr) => {
        async {
            let link = $link;
            sqlx::query(SPEND_LIVE_LINKS)
                .bind(link.user_id)
                .bind(link.purpose.as_str())
                .bind(link.now)
                .execute(&mut *$tx)
                .await?;
            let target = link.target.as_ref();
            sqlx::query(
                "INSERT INTO email_tokens (token_hash, user_id, purpose, created_at, expires_at, \
                 new_email, new_email_normalized, session_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(link.token_hash)
            .bind(link.user_id)
            .bind(link.purpose.as_str())
            .bind(link.now)
            .bind(link.expires_at)
            .bind(target.map(|t| t.email))
            .bind(target.map(|t| t.email_normalized))
            .bind(target.map(|t| t.requested_by))
            .execute(&mut *$tx)
            .await?;
            super::mail::insert_mail!($tx, link.mail, link.now).await?;
            if let Some(also) = link.also {
                super::mail::insert_mail!($tx, also, link.now).await?;
            }
            Ok::<_, sqlx::Error>(())
        }
    };
}

impl Store {
    /// Stores a link and queues the mail carrying it, and spends every
    /// earlier live link of the same purpose: only the newest one works.
    pub async fn issue_link(&self, link: &NewLink<'_>) -> StoreResult<()> {
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            insert_link!(tx, link).await?;
            tx.commit().await
        }.await)
        .context("Failed to store a link and queue its mail")
    }

    /// Creates an account and queues its verification link, or, when the
    /// address is taken, queues `taken(owner's address)` for the owner
    /// instead; one commit either way. `link.user_id` is the new account's.
    pub async fn register_user(
        &self,
        user: &NewUser<'_>,
        link: &NewLink<'_>,
        taken: impl FnOnce(&str) -> NewMail,
    ) -> StoreResult<Registration> {
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(super::users::INSERT_USER)
                .bind(user.id)
                .bind(user.email)
                .bind(user.email_normalized)
                .bind(user.password_hash)
                .bind(user.now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let outcome = if inserted == 1 {
                insert_link!(tx, link).await?;
                Registration::Created
            } else {
                let (owner, address): (UserId, String) = sqlx::query_as(
                    "SELECT id, email FROM users WHERE email_normalized = $1",
                )
                .bind(user.email_normalized)
                .fetch_one(&mut *tx)
                .await?;
                let notice = taken(&address);
                super::mail::insert_mail!(tx, notice, user.now).await?;
                Registration::Taken(owner)
            };
            tx.commit().await?;
            Ok::<_, sqlx::Error>(outcome)
        }.await)
        .context("Failed to register a user")
    }

    /// Queues one message on its own, for mail no other change goes with.
    pub async fn queue_mail(&self, mail: &NewMail, now: Timestamp) -> StoreResult<()> {
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            super::mail::insert_mail!(tx, mail, now).await?;
            tx.commit().await
        }.await)
        .context("Failed to queue a mail")
    }

    /// Marks the address of a verification link's account verified, spending
    /// the link, with `event` (its `user_id` is filled in here). `None` when
    /// the link was spent or expired.
    pub async fn verify_email(
        &self,
        token_hash: &[u8],
        now: Timestamp,
        event: NewEvent<'_>,
    ) -> StoreResult<Option<UserId>> {
        let purpose = LinkPurpose::VerifyEmail.as_str();
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let Some(user_id) = spend_link!(tx, token_hash, purpose, now).await? else {
                tx.rollback().await?;
                return Ok(None);
            };
            sqlx::query(
                "UPDATE users SET email_verified_at = $2 \
                 WHERE id = $1 AND email_verified_at IS NULL",
            )
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let event = NewEvent { user_id: Some(user_id), ..event };
            super::events::bind_event(sqlx::query(super::events::INSERT_EVENT), &event)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(Some(user_id))
        }.await)
        .context("Failed to verify an email address")
    }

    /// Moves an account to the address its email-change link confirms: the
    /// link spent, the address replaced and marked verified (following the
    /// link proved it), every other link of the account spent (they were
    /// sent to, or about, the old address), and every session but the one
    /// that asked ended, with `event`, in one commit.
    pub async fn change_email(
        &self,
        token_hash: &[u8],
        now: Timestamp,
        event: NewEvent<'_>,
    ) -> StoreResult<EmailChange> {
        let purpose = LinkPurpose::ChangeEmail.as_str();
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let Some(user_id) = spend_link!(tx, token_hash, purpose, now).await? else {
                tx.rollback().await?;
                return Ok(EmailChange::InvalidLink);
            };
            let (email, normalized, requested_by): (String, String, Option<SessionId>) =
                sqlx::query_as(
                    "SELECT new_email, new_email_normalized, session_id FROM email_tokens \
                     WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_one(&mut *tx)
                .await?;
            // The unique index decides between two accounts confirming the
            // same address at once; the check spares the common case an error.
            let moved = sqlx::query(
                "UPDATE users SET email = $2, email_normalized = $3, email_verified_at = $4 \
                 WHERE id = $1 AND NOT EXISTS \
                 (SELECT 1 FROM users other WHERE other.email_normalized = $3 AND other.id <> $1)",
            )
            .bind(user_id)
            .bind(&email)
            .bind(&normalized)
            .bind(now)
            .execute(&mut *tx)
            .await;
            let moved = match moved {
                Ok(done) => done.rows_affected() == 1,
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => false,
                Err(other) => return Err(other),
            };
            if !moved {
                tx.rollback().await?;
                // Spend it all the same: it can never work now.
                sqlx::query("UPDATE email_tokens SET used_at = $2 WHERE token_hash = $1")
                    .bind(token_hash)
                    .bind(now)
                    .execute(pool)
                    .await?;
                return Ok(EmailChange::Taken);
            }
            sqlx::query(
                "UPDATE email_tokens SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL",
            )
            .bind(user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let ended = sqlx::query(
                "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 \
                 WHERE user_id = $1 AND revoked_at IS NULL AND ($4 IS NULL OR id <> $4)",
            )
            .bind(user_id)
            .bind(now)
            .bind(RevokeReason::EmailChanged.as_str())
            .bind(requested_by)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let event = NewEvent { user_id: Some(user_id), ..event };
            super::events::bind_event(sqlx::query(super::events::INSERT_EVENT), &event)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(EmailChange::Changed { user_id, email, kept: requested_by, ended })
        }.await)
        .context("Failed to change an email address")
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
             WHERE t.token_hash = $1 AND t.purpose = $2 AND t.used_at IS NULL AND t.expires_at > $3 \
             AND u.disabled_at IS NULL",
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
        on_writer!(self, pool => async {
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
            sqlx::query(SPEND_RESET_LINKS)
                .bind(reset.user_id)
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

/// Spends the user's live password-reset and email-change links inside the
/// transaction of a password change or reset (`$1` user, `$2` now): a link
/// mailed before must not undo it, and whoever asked to move the account
/// with the old password loses that too.
pub(super) const SPEND_RESET_LINKS: &str = "UPDATE email_tokens SET used_at = $2 \
     WHERE user_id = $1 AND purpose IN ('password_reset', 'change_email') AND used_at IS NULL";
