//! Account recovery: "forgot password" mails a single-use link, and the link
//! sets a new password and ends every session of the account.
//!
//! Asking for a link answers the same way, at once, whether or not the
//! address has an account: the lookup, the throttle and the mail happen
//! after the answer, in a task of their own, so neither the answer nor its
//! timing says anything. A reset is one transaction that starts by spending
//! the link (of two concurrent uses, one wins), replaces the password, spends
//! every other reset link, ends every session on every instance (they are
//! rows), and records the event and the "your password was changed" notice.

use std::{future::Future, sync::Arc, time::Duration};
use tokio::sync::Semaphore;

use super::{AuthService, credentials::password_hints};
use crate::server::{
    client::ClientInfo,
    config::MailSettings,
    db::{EventKind, LinkPurpose, LinkReset, NewLink, UserId},
    emails::Email,
    error::AuthError,
    mail::{Links, MailQueue, templates},
    passwords::{Password, PasswordProblem},
    time::Timestamp,
    tokens::LinkToken,
};

/// What recovery needs besides the service's parts.
#[derive(Clone, Debug)]
pub struct RecoverySettings {
    pub links: Links,
    pub queue: MailQueue,
    /// How long a reset link works.
    pub reset_ttl: Duration,
    /// How long an address-confirmation link works.
    pub verify_ttl: Duration,
    /// Whether an unconfirmed address keeps its account from signing in.
    pub require_verified_email: bool,
    /// Requests for a link being handled after their answer. Bounded, so a
    /// flood of requests cannot pile up work without end; one over the bound
    /// is dropped (and logged), with the same answer as any other.
    pub pending: Arc<Semaphore>,
}

/// Requests for a link handled at once, after their answers.
pub const MAX_PENDING_REQUESTS: usize = 256;

impl RecoverySettings {
    pub fn new(links: Links, queue: MailQueue, mail: &MailSettings) -> Self {
        RecoverySettings {
            links,
            queue,
            reset_ttl: mail.reset_ttl,
            verify_ttl: mail.verify_ttl,
            require_verified_email: mail.require_verified_email,
            pending: Arc::new(Semaphore::new(MAX_PENDING_REQUESTS)),
        }
    }
}

impl AuthService {
    /// Asks for a password-reset link for `email`. Answers `Ok` whether or
    /// not an account exists, before finding out: only a malformed address
    /// is refused (that says nothing about accounts).
    pub fn forgot_password(
        self: &Arc<Self>,
        email: &str,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let email = Email::parse_existing(email)?;
        let client = client.clone();
        self.after_answer("password-reset request", move |service| async move {
            service.send_reset_link(&email, &client).await
        });
        Ok(())
    }

    /// Runs `work` after the request that asked for it was answered, so
    /// neither the answer nor its timing depends on what the work finds. At
    /// most [`MAX_PENDING_REQUESTS`] run at once; one more is dropped, and
    /// logged, with the same answer as any other.
    pub(super) fn after_answer<F>(
        self: &Arc<Self>,
        what: &'static str,
        work: impl FnOnce(Arc<Self>) -> F,
    ) where
        F: Future<Output = Result<(), AuthError>> + Send + 'static,
    {
        let Ok(permit) = Arc::clone(&self.recovery.pending).try_acquire_owned() else {
            tracing::warn!("too many {what}s in progress; one was dropped");
            return;
        };
        let work = work(Arc::clone(self));
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(error) = work.await {
                // Nobody is waiting for this answer; the person may ask again.
                tracing::warn!(error = %error, "a {what} failed");
            }
        });
    }

    async fn send_reset_link(&self, email: &Email, client: &ClientInfo) -> Result<(), AuthError> {
        let now = Timestamp::now();
        let keys = self
            .throttle
            .mail_keys(LinkPurpose::PasswordReset, &email.normalized, client);
        // What happened, for the audit trail: `sent`, `no_account` or
        // `throttled`, and whose account it was.
        let (detail, user_id) = match self.throttle.reserve_send(&keys, now).await? {
            None => ("throttled", None),
            Some(reservation) => {
                self.audit.locks(reservation, None, client, now).await;
                match self.store.find_user_by_email(email.lookup_keys()).await? {
                    None => ("no_account", None),
                    // An operator disabled it: recovery does not undo that.
                    Some(user) if user.disabled => ("disabled", Some(user.id)),
                    Some(user) => {
                        self.issue_reset_link(user.id, &user.email, now).await?;
                        ("sent", Some(user.id))
                    }
                }
            }
        };
        self.audit
            .record(
                EventKind::PasswordResetRequested,
                user_id,
                None,
                client,
                Some(detail),
                now,
            )
            .await;
        Ok(())
    }

    /// Stores a new reset link for the user (spending older ones) and queues
    /// the mail that carries it, in one commit.
    async fn issue_reset_link(
        &self,
        user_id: UserId,
        email: &str,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        let token = LinkToken::generate();
        let recovery = &self.recovery;
        let mail = templates::password_reset(
            email,
            &recovery.links.reset_password(token.expose()),
            recovery.reset_ttl,
        );
        self.store
            .issue_link(&NewLink {
                user_id,
                purpose: LinkPurpose::PasswordReset,
                token_hash: &token.hash(),
                now,
                expires_at: now.plus(recovery.reset_ttl),
                mail: &mail,
                also: None,
                target: None,
            })
            .await?;
        recovery.queue.wake();
        Ok(())
    }

    /// Sets a new password through a reset link and ends every session of
    /// the account. Does not sign anyone in: the person signs in with the
    /// new password. Returns how many sessions ended.
    pub async fn reset_password(
        &self,
        token: &str,
        password: &Password,
        confirmation: &Password,
        client: &ClientInfo,
    ) -> Result<u64, AuthError> {
        let token = LinkToken::parse(token.trim()).ok_or(AuthError::InvalidLink)?;
        let token_hash = token.hash();
        let link = self
            .store
            .find_link(&token_hash, LinkPurpose::PasswordReset, Timestamp::now())
            .await?
            .ok_or(AuthError::InvalidLink)?;
        self.passwords
            .check_new(password, confirmation, password_hints(&link.email))
            .await
            .map_err(|problem| {
                let field = match problem {
                    PasswordProblem::Mismatch => "password_confirm",
                    _ => "password",
                };
                AuthError::password(field, problem)
            })?;
        let hash = self
            .hashed(self.passwords.hash(password).await, client)
            .await?;
        let now = Timestamp::now();
        let notice =
            self.password_changed_notice(&link.email, "You have been signed out on every device.");
        let ended = self
            .store
            .reset_password(&LinkReset {
                token_hash: &token_hash,
                user_id: link.user_id,
                new_password_hash: &hash,
                now,
                event: super::audit::event(
                    EventKind::PasswordReset,
                    Some(link.user_id),
                    None,
                    client,
                    None,
                    now,
                ),
                notice: &notice,
            })
            .await?
            // Spent or expired while the new password was being hashed.
            .ok_or(AuthError::InvalidLink)?;
        self.recovery.queue.wake();
        Ok(ended)
    }
}
