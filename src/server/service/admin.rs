//! What an operator can do to an account, once: the command line
//! (`portcullis admin …`, `server::cli`) is a thin adapter over it, and so
//! will the admin HTTP API be. Every action names its actor in the audit
//! trail, and takes effect at once on every instance: a session is a row
//! that every request checks, so ending it here ends it everywhere, whichever
//! process wrote it.

use super::audit::event;
use crate::server::{
    client::ClientInfo,
    db::{AdminSession, EventKind, Store, UserId, UserRecord, UserSummary},
    emails::Email,
    error::AuthError,
    time::Timestamp,
};

/// Who acted: the command line, or (later) an admin API key by its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    Cli,
    ApiKey(String),
}

impl Actor {
    /// As recorded in the audit trail's detail.
    pub fn describe(&self) -> String {
        match self {
            Actor::Cli => "by cli".to_string(),
            Actor::ApiKey(name) => format!("by api key {name}"),
        }
    }
}

/// The most users one listing returns.
pub const MAX_LIST: u32 = 1000;

/// An account and its sessions, as an operator inspects them.
#[derive(Clone, Debug)]
pub struct UserSessions {
    pub user: UserRecord,
    pub sessions: Vec<AdminSession>,
}

/// The operators' service: shares the `Store` and the audit events with
/// `AuthService` (each change is written with its event, in one commit), and
/// needs nothing else (no keys, no hashing), so a command-line process can
/// build it from the database settings alone.
pub struct Admin {
    store: Store,
}

impl Admin {
    pub fn new(store: Store) -> Admin {
        Admin { store }
    }

    /// Users whose address contains `search`, oldest first, at most `limit`
    /// (1 to [`MAX_LIST`]).
    pub async fn users(
        &self,
        search: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserSummary>, AuthError> {
        if !(1..=MAX_LIST).contains(&limit) {
            return Err(AuthError::invalid(
                "limit",
                format!("The limit must be between 1 and {MAX_LIST}."),
            ));
        }
        Ok(self
            .store
            .list_users(search, i64::from(limit), Timestamp::now())
            .await?)
    }

    /// The account of `email` (any case, either form of its domain).
    pub async fn user(&self, email: &str) -> Result<UserRecord, AuthError> {
        let email = Email::parse_existing(email)?;
        self.store
            .find_user_by_email(email.lookup_keys())
            .await?
            .ok_or(AuthError::UnknownUser)
    }

    /// The account of `email` and every session kept for it.
    pub async fn sessions(&self, email: &str) -> Result<UserSessions, AuthError> {
        let user = self.user(email).await?;
        let sessions = self.store.all_sessions(user.id).await?;
        Ok(UserSessions { user, sessions })
    }

    /// Ends every session of `email`'s account, on every instance; returns
    /// how many were live.
    pub async fn sign_out(&self, email: &str, actor: &Actor) -> Result<u64, AuthError> {
        let user = self.user(email).await?;
        let now = Timestamp::now();
        let detail = actor.describe();
        Ok(self
            .store
            .admin_sign_out(
                user.id,
                now,
                &self.event(EventKind::AdminSignOut, Some(user.id), &detail, now),
            )
            .await?)
    }

    /// Disables `email`'s account: every session ends, and sign-in, refresh
    /// and recovery are refused until [`enable`](Self::enable). Returns how
    /// many sessions ended, or `None` when it was disabled already.
    pub async fn disable(
        &self,
        email: &str,
        reason: Option<&str>,
        actor: &Actor,
    ) -> Result<Option<u64>, AuthError> {
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if reason.is_some_and(|r| r.chars().count() > 500 || r.chars().any(char::is_control)) {
            return Err(AuthError::invalid(
                "reason",
                "The reason must be one line of at most 500 characters.".to_string(),
            ));
        }
        let user = self.user(email).await?;
        let now = Timestamp::now();
        let detail = match reason {
            Some(reason) => format!("{}: {reason}", actor.describe()),
            None => actor.describe(),
        };
        Ok(self
            .store
            .disable_user(
                user.id,
                reason,
                now,
                &self.event(EventKind::AccountDisabled, Some(user.id), &detail, now),
            )
            .await?)
    }

    /// Lifts a disable; `false` when the account was not disabled.
    pub async fn enable(&self, email: &str, actor: &Actor) -> Result<bool, AuthError> {
        let user = self.user(email).await?;
        let now = Timestamp::now();
        let detail = actor.describe();
        Ok(self
            .store
            .enable_user(
                user.id,
                &self.event(EventKind::AccountEnabled, Some(user.id), &detail, now),
            )
            .await?)
    }

    /// Erases `email`'s account and everything that names it, leaving one
    /// audit row ("user deleted", by whom) that names neither the address
    /// nor the id.
    pub async fn delete(&self, email: &str, actor: &Actor) -> Result<(), AuthError> {
        let parsed = Email::parse_existing(email)?;
        let user = self.user(email).await?;
        let now = Timestamp::now();
        let detail = actor.describe();
        let erased = self
            .store
            .erase_user(
                user.id,
                &parsed.normalized,
                &self.event(EventKind::UserDeleted, None, &detail, now),
            )
            .await?;
        if !erased {
            // Deleted by someone else meanwhile.
            return Err(AuthError::UnknownUser);
        }
        Ok(())
    }

    fn event<'a>(
        &self,
        kind: EventKind,
        user_id: Option<UserId>,
        detail: &'a str,
        now: Timestamp,
    ) -> crate::server::db::NewEvent<'a> {
        event(kind, user_id, None, &NO_CLIENT, Some(detail), now)
    }
}

/// An operator's action has no client address or user agent.
static NO_CLIENT: std::sync::LazyLock<ClientInfo> = std::sync::LazyLock::new(ClientInfo::default);
