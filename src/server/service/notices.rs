//! Security notices by mail: each tells the account's owner what just
//! happened, with a "this wasn't me" pointer to `/forgot-password`.
//!
//! A notice that goes with a change is queued in that change's transaction
//! (the store takes it as a `NewMail`); the worker is then woken with
//! [`AuthService::mail_queued`].

use super::{AuthService, Principal};
use crate::server::{
    client::{ClientInfo, describe_device, device_family},
    db::{EventKind, NewMail},
    mail::templates,
    time::Timestamp,
};

impl AuthService {
    /// The "your password was changed" notice for `email`.
    pub(super) fn password_changed_notice(&self, email: &str, signed_out: &str) -> NewMail {
        templates::password_changed(email, &self.recovery.links.forgot_password(), signed_out)
    }

    /// The notice that a replayed refresh token ended one of `email`'s
    /// sessions.
    pub(super) fn reuse_notice(&self, email: &str) -> NewMail {
        templates::session_stolen(email, &self.recovery.links.forgot_password())
    }

    /// Told to the owner of `email` when someone tried to register it, or
    /// to move another account to it.
    pub(super) fn address_in_use_notice(&self, email: &str) -> NewMail {
        templates::address_in_use(email, &self.recovery.links.forgot_password())
    }

    /// Wakes the mail worker after a commit that queued mail.
    pub(super) fn mail_queued(&self) {
        self.recovery.queue.wake();
    }

    /// After a sign-in: mails the owner when it came from a kind of device
    /// (browser and system, whatever their versions) none of the account's
    /// other sessions used, ended ones included. The first sign-in of an
    /// account is no news. A failure here does not fail the sign-in.
    pub(super) async fn notice_new_device(
        &self,
        principal: &Principal,
        client: &ClientInfo,
        now: Timestamp,
    ) {
        let family = device_family(client.user_agent());
        let result: Result<bool, crate::server::db::StoreError> = async {
            let others = self
                .store
                .other_user_agents(principal.user_id, principal.session_id)
                .await?;
            if others.is_empty()
                || others
                    .iter()
                    .any(|agent| device_family(agent.as_deref()) == family)
            {
                return Ok(false);
            }
            let mail = templates::new_device_sign_in(
                &principal.email,
                &describe_device(client.user_agent()),
                client.ip(),
                &now.to_display(),
                &self.recovery.links.forgot_password(),
            );
            self.store.queue_mail(&mail, now).await?;
            Ok(true)
        }
        .await;
        match result {
            Ok(true) => {
                self.mail_queued();
                self.audit
                    .of(
                        EventKind::NewDeviceSignIn,
                        Some(principal),
                        client,
                        Some(&family),
                    )
                    .await;
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(error = ?error, "failed to check for a new device")
            }
        }
    }
}
