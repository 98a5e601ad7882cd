//! A person's own devices and history: the session list, revoking one
//! session, the activity list.

use super::{AuthService, Principal};
use crate::server::{
    client::ClientInfo,
    db::{EventKind, EventRecord, RevokeReason, SessionId, SessionRecord},
    error::AuthError,
    passwords::Password,
    time::Timestamp,
};

impl AuthService {
    /// The user's live sessions, for the account page and `/auth/sessions`.
    pub async fn list_sessions(
        &self,
        principal: &Principal,
    ) -> Result<Vec<SessionRecord>, AuthError> {
        Ok(self
            .store
            .list_active_sessions(principal.user_id, Timestamp::now())
            .await?)
    }

    /// Whether sensitive actions need the password re-entered now.
    pub fn needs_reauthentication(&self, principal: &Principal) -> bool {
        Timestamp::now() > principal.authenticated_at.plus(self.sessions.reauth_window)
    }

    /// What a sensitive action asks for: a sign-in within the
    /// re-authentication window, or else the password (checked, throttled,
    /// and then counted as a fresh sign-in of this session).
    pub(crate) async fn require_fresh(
        &self,
        principal: &Principal,
        password: Option<&Password>,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        if !self.needs_reauthentication(principal) {
            return Ok(());
        }
        let password = password.ok_or(AuthError::ReauthRequired)?;
        self.passwords
            .check_length(password)
            .map_err(|_| AuthError::ReauthRequired)?;
        self.confirm_password(principal, password, client).await?;
        self.store
            .mark_reauthenticated(principal.session_id, Timestamp::now())
            .await?;
        Ok(())
    }

    /// Ends one of the user's sessions, this one included. Needs a sign-in
    /// within the re-authentication window, or the password. Someone else's
    /// session is answered exactly like a session that does not exist.
    /// Returns whether the caller's own session was ended.
    pub async fn revoke_session(
        &self,
        principal: &Principal,
        target: SessionId,
        password: Option<&Password>,
        client: &ClientInfo,
    ) -> Result<bool, AuthError> {
        self.require_fresh(principal, password, client).await?;
        let now = Timestamp::now();
        let revoked = self
            .store
            .revoke_session_of_user(principal.user_id, target, RevokeReason::RevokedByUser, now)
            .await?;
        if !revoked {
            return Err(AuthError::NotFound);
        }
        let detail = format!("session {target}");
        self.audit
            .record(
                EventKind::SessionRevoked,
                Some(principal.user_id),
                Some(principal.session_id),
                client,
                Some(&detail),
                now,
            )
            .await;
        Ok(target == principal.session_id)
    }

    pub async fn recent_events(
        &self,
        principal: &Principal,
        limit: i64,
    ) -> Result<Vec<EventRecord>, AuthError> {
        Ok(self.store.recent_events(principal.user_id, limit).await?)
    }
}
