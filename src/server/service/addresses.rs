//! The account's email address: confirming it (a link mailed at
//! registration, or again on request) and changing it (a link mailed to the
//! new address; the change happens when it is followed).
//!
//! Neither says whether an address belongs to an account. A request for a
//! verification link by address is answered before it is looked up (see
//! `AuthService::after_answer`); an email change to a taken address is
//! answered like any other, and the taken address's owner is told instead.
//! Every mail is limited per address and per network, with the same answer
//! when the limit holds it back.

use std::sync::Arc;

use super::{AuthService, Principal, audit::event, credentials::account_key};
use crate::server::{
    client::ClientInfo,
    db::{EmailChange, EmailTarget, EventKind, LinkPurpose, NewLink, NewMail, SessionId, UserId},
    emails::Email,
    error::AuthError,
    mail::templates,
    middleware::AuthState,
    passwords::Password,
    time::Timestamp,
    tokens::LinkToken,
};

/// A verification link, ready to be stored with the mail carrying it.
pub(super) struct Link {
    token_hash: [u8; 32],
    mail: NewMail,
    ttl: std::time::Duration,
}

impl Link {
    /// The link as stored for `user_id`'s account, spending older ones.
    pub(super) fn for_user(&self, user_id: UserId, now: Timestamp) -> NewLink<'_> {
        NewLink {
            user_id,
            purpose: LinkPurpose::VerifyEmail,
            token_hash: &self.token_hash,
            now,
            expires_at: now.plus(self.ttl),
            mail: &self.mail,
            also: None,
            target: None,
        }
    }
}

impl AuthService {
    /// Whether an unconfirmed address keeps its account from signing in.
    pub(super) fn requires_verified_email(&self) -> bool {
        self.recovery.require_verified_email
    }

    /// A new verification link for `email` and the mail carrying it.
    pub(super) fn verification_link(&self, email: &str) -> Link {
        let token = LinkToken::generate();
        let recovery = &self.recovery;
        let mail = templates::verify_email(
            email,
            &recovery.links.verify_email(token.expose()),
            recovery.verify_ttl,
        );
        Link {
            token_hash: token.hash(),
            mail,
            ttl: recovery.verify_ttl,
        }
    }

    /// Confirms the address of the account whose verification link this is.
    pub async fn verify_email(
        &self,
        token: &str,
        client: &ClientInfo,
    ) -> Result<UserId, AuthError> {
        let token = LinkToken::parse(token.trim()).ok_or(AuthError::InvalidLink)?;
        let now = Timestamp::now();
        self.store
            .verify_email(
                &token.hash(),
                now,
                event(EventKind::EmailVerified, None, None, client, None, now),
            )
            .await?
            .ok_or(AuthError::InvalidLink)
    }

    /// Mails a new verification link: to the signed-in account's address
    /// (nothing is sent when it is confirmed already), or, for someone who
    /// cannot sign in before confirming, to `email`'s account, if it has one
    /// that needs it. By address, the answer comes at once and says nothing
    /// about the account. An `email` given is checked either way.
    pub async fn resend_verification(
        self: &Arc<Self>,
        auth: &AuthState,
        email: Option<&str>,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let email = email.map(Email::parse_existing).transpose()?;
        let principal = match (auth.require(), email) {
            (Ok(principal), _) => principal,
            (Err(error @ AuthError::Unavailable(_)), _) | (Err(error), None) => return Err(error),
            // Signed out, or with credentials that no longer work: by address.
            (Err(_), Some(email)) => {
                let client = client.clone();
                self.after_answer("verification request", move |service| async move {
                    match service
                        .store
                        .find_user_by_email(email.lookup_keys())
                        .await?
                    {
                        Some(user) if !user.email_verified && !user.disabled => {
                            service
                                .send_verification(user.id, &user.email, &client)
                                .await
                        }
                        _ => Ok(()),
                    }
                });
                return Ok(());
            }
        };
        if principal.email_verified {
            return Ok(());
        }
        self.send_verification(principal.user_id, &principal.email, client)
            .await
    }

    async fn send_verification(
        &self,
        user_id: UserId,
        email: &str,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let now = Timestamp::now();
        let keys = self
            .throttle
            .mail_keys(LinkPurpose::VerifyEmail, &account_key(email), client);
        let detail = match self.throttle.reserve_send(&keys, now).await? {
            None => "throttled",
            Some(reservation) => {
                self.audit
                    .locks(reservation, Some(user_id), client, now)
                    .await;
                let link = self.verification_link(email);
                self.store.issue_link(&link.for_user(user_id, now)).await?;
                self.mail_queued();
                "sent"
            }
        };
        self.audit
            .record(
                EventKind::VerificationSent,
                Some(user_id),
                None,
                client,
                Some(detail),
                now,
            )
            .await;
        Ok(())
    }

    /// Asks to move the account to `new_email`, after checking the
    /// password. Mails the new address a link (the change happens when it
    /// is followed) and the current one a notice with the new address
    /// masked. Answers the same when the new address has an account (its
    /// owner is told instead) or when the limit on such mails holds it back.
    pub async fn request_email_change(
        &self,
        principal: &Principal,
        new_email: &str,
        password: &Password,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let new = Email::parse_new(new_email)
            .map_err(|problem| AuthError::invalid("new_email", problem.to_string()))?;
        self.passwords
            .check_length(password)
            .map_err(|problem| AuthError::password("current_password", problem))?;
        if new.normalized == account_key(&principal.email) {
            return Err(AuthError::invalid(
                "new_email",
                "That is already your address.".to_string(),
            ));
        }
        self.confirm_password(principal, password, client).await?;
        let now = Timestamp::now();
        let forgot = self.recovery.links.forgot_password();
        // Sent whatever happens next, so the owner learns nothing from it.
        let notice = templates::email_change_requested(&principal.email, &new.display, &forgot);
        let keys = self
            .throttle
            .mail_keys(LinkPurpose::ChangeEmail, &new.normalized, client);
        let detail = match self.throttle.reserve_send(&keys, now).await? {
            None => {
                self.store.queue_mail(&notice, now).await?;
                "throttled"
            }
            Some(reservation) => {
                self.audit
                    .locks(reservation, Some(principal.user_id), client, now)
                    .await;
                match self.store.find_user_by_email(new.lookup_keys()).await? {
                    Some(owner) => {
                        self.store.queue_mail(&notice, now).await?;
                        self.store
                            .queue_mail(&self.address_in_use_notice(&owner.email), now)
                            .await?;
                        "address_in_use"
                    }
                    None => {
                        self.issue_change_link(
                            principal.session_id,
                            principal.user_id,
                            &new,
                            &notice,
                            now,
                        )
                        .await?;
                        "sent"
                    }
                }
            }
        };
        self.mail_queued();
        self.audit
            .of(
                EventKind::EmailChangeRequested,
                Some(principal),
                client,
                Some(detail),
            )
            .await;
        Ok(())
    }

    async fn issue_change_link(
        &self,
        requested_by: SessionId,
        user_id: UserId,
        new: &Email,
        notice: &NewMail,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        let token = LinkToken::generate();
        let recovery = &self.recovery;
        let mail = templates::confirm_email_change(
            &new.display,
            &recovery.links.confirm_email(token.expose()),
            recovery.verify_ttl,
        );
        self.store
            .issue_link(&NewLink {
                user_id,
                purpose: LinkPurpose::ChangeEmail,
                token_hash: &token.hash(),
                now,
                expires_at: now.plus(recovery.verify_ttl),
                mail: &mail,
                also: Some(notice),
                target: Some(EmailTarget {
                    email: &new.display,
                    email_normalized: &new.normalized,
                    requested_by,
                }),
            })
            .await?;
        Ok(())
    }

    /// Moves the account to the address the link was sent to, and ends
    /// every session but the one that asked for the change. Returns that
    /// session (it stays signed in) and how many sessions ended.
    pub async fn confirm_email_change(
        &self,
        token: &str,
        client: &ClientInfo,
    ) -> Result<EmailChanged, AuthError> {
        let token = LinkToken::parse(token.trim()).ok_or(AuthError::InvalidLink)?;
        let now = Timestamp::now();
        match self
            .store
            .change_email(
                &token.hash(),
                now,
                event(EventKind::EmailChanged, None, None, client, None, now),
            )
            .await?
        {
            EmailChange::Changed {
                user_id,
                kept,
                ended,
                ..
            } => Ok(EmailChanged {
                user_id,
                kept,
                ended,
            }),
            EmailChange::InvalidLink => Err(AuthError::InvalidLink),
            EmailChange::Taken => Err(AuthError::EmailTaken),
        }
    }
}

/// A confirmed email change.
#[derive(Clone, Copy, Debug)]
pub struct EmailChanged {
    pub user_id: UserId,
    /// The session that asked for the change, still signed in.
    pub kept: Option<SessionId>,
    /// Sessions ended.
    pub ended: u64,
}
