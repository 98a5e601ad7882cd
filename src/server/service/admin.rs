//! What an operator can do to an account, once: the command line
//! (`portcullis admin …`, `server::cli`) is a thin adapter over it, and so
//! will the admin HTTP API be. Every action names its actor in the audit
//! trail, and takes effect at once on every instance: a session is a row
//! that every request checks, so ending it here ends it everywhere, whichever
//! process wrote it.

use super::{Throttle, audit::event};
use crate::server::{
    client::ClientInfo,
    config::Settings,
    db::{
        AdminSession, ApiKeyRecord, ErasedEvents, EventDelivery, EventKind, SessionId, Store,
        UserId, UserRecord, UserSummary,
    },
    emails::Email,
    error::AuthError,
    time::Timestamp,
    tokens::AdminKeyToken,
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

/// How an operator names an account: the CLI by address, the API by id.
#[derive(Clone, Copy, Debug)]
pub enum UserRef<'a> {
    Email(&'a str),
    Id(UserId),
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
    throttle: Throttle,
    /// What an erasure leaves to report: its events, when a webhook
    /// endpoint is told of them.
    erased: ErasedEvents,
}

impl Admin {
    pub fn new(store: Store, settings: &Settings) -> Admin {
        Admin {
            throttle: Throttle::new(store.clone(), settings.throttle),
            store,
            erased: if settings.webhooks.url.is_some() {
                ErasedEvents::Report
            } else {
                ErasedEvents::Drop
            },
        }
    }

    /// Users whose address contains `search`, oldest first, at most `limit`
    /// (1 to [`MAX_LIST`]).
    pub async fn users(
        &self,
        search: Option<&str>,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<UserSummary>, AuthError> {
        check_limit(limit)?;
        Ok(self
            .store
            .list_users(search, after, i64::from(limit), Timestamp::now())
            .await?)
    }

    /// The account named (an address in any case, either form of its
    /// domain; or an id).
    pub async fn user(&self, who: UserRef<'_>) -> Result<UserRecord, AuthError> {
        match who {
            UserRef::Email(email) => {
                let email = Email::parse_existing(email)?;
                self.store.find_user_by_email(email.lookup_keys()).await?
            }
            UserRef::Id(id) => self.store.find_user(id).await?,
        }
        .ok_or(AuthError::UnknownUser)
    }

    /// The account and every session kept for it.
    pub async fn sessions(&self, who: UserRef<'_>) -> Result<UserSessions, AuthError> {
        let user = self.user(who).await?;
        let sessions = self.store.all_sessions(user.id).await?;
        Ok(UserSessions { user, sessions })
    }

    /// Ends every session of `email`'s account, on every instance; returns
    /// how many were live.
    pub async fn sign_out(&self, who: UserRef<'_>, actor: &Actor) -> Result<u64, AuthError> {
        let user = self.user(who).await?;
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
        who: UserRef<'_>,
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
        let user = self.user(who).await?;
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
    pub async fn enable(&self, who: UserRef<'_>, actor: &Actor) -> Result<bool, AuthError> {
        let user = self.user(who).await?;
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
    pub async fn delete(&self, who: UserRef<'_>, actor: &Actor) -> Result<(), AuthError> {
        let user = self.user(who).await?;
        // The key the account is stored under (what the counters name).
        let key = Email::parse_existing(&user.email)
            .map_or_else(|_| user.email.to_lowercase(), |e| e.normalized);
        let now = Timestamp::now();
        let detail = actor.describe();
        let erased = self
            .store
            .erase_user(
                user.id,
                &key,
                &self.event(EventKind::UserDeleted, None, &detail, now),
                self.erased,
            )
            .await?;
        if !erased {
            // Deleted by someone else meanwhile.
            return Err(AuthError::UnknownUser);
        }
        Ok(())
    }

    /// Ends one session of any user, on every instance.
    pub async fn revoke_session(&self, session: SessionId, actor: &Actor) -> Result<(), AuthError> {
        let now = Timestamp::now();
        let detail = actor.describe();
        self.store
            .admin_revoke_session(
                session,
                now,
                &self.event(EventKind::SessionRevoked, None, &detail, now),
            )
            .await?
            .map(drop)
            .ok_or(AuthError::NotFound)
    }

    /// Creates an admin API key called `name` and returns it: the only time
    /// it is seen, since only its secret's hash is stored.
    pub async fn create_api_key(&self, name: &str, actor: &Actor) -> Result<String, AuthError> {
        let name = name.trim();
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(AuthError::invalid(
                "name",
                "A key's name is 1 to 64 letters, digits, '.', '_' or '-'.".to_string(),
            ));
        }
        let key = AdminKeyToken::generate();
        let now = Timestamp::now();
        let detail = format!("{name} {}", actor.describe());
        let stored = self
            .store
            .insert_api_key(
                key.id(),
                name,
                &key.secret_hash(),
                now,
                &self.event(EventKind::ApiKeyCreated, None, &detail, now),
            )
            .await?;
        if !stored {
            return Err(AuthError::invalid(
                "name",
                format!("A live key is already called {name}; revoke it first."),
            ));
        }
        Ok(key.expose().to_string())
    }

    /// Every key, revoked ones too (never a secret).
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, AuthError> {
        Ok(self.store.list_api_keys().await?)
    }

    /// Revokes the live key called `name`: refused from its next use on.
    pub async fn revoke_api_key(&self, name: &str, actor: &Actor) -> Result<(), AuthError> {
        let now = Timestamp::now();
        let detail = format!("{name} {}", actor.describe());
        let revoked = self
            .store
            .revoke_api_key(
                name,
                now,
                &self.event(EventKind::ApiKeyRevoked, None, &detail, now),
            )
            .await?;
        if revoked {
            Ok(())
        } else {
            Err(AuthError::UnknownApiKey)
        }
    }

    /// The actor an admin API request authenticates as. A missing, malformed,
    /// unknown or revoked key gets the same `BadAdminKey`; failures count
    /// against the client's network (reserved before the check, like a
    /// sign-in), so keys cannot be guessed at speed.
    pub async fn authenticate(
        &self,
        presented: Option<&str>,
        client: &ClientInfo,
    ) -> Result<Actor, AuthError> {
        let now = Timestamp::now();
        let keys = self.throttle.admin_key_keys(client);
        let reservation = self.throttle.reserve(&keys, now).await?;
        let checked = match presented.and_then(AdminKeyToken::parse) {
            None => None,
            Some(key) => self
                .store
                .use_api_key(key.id(), now)
                .await?
                .filter(|(_, hash)| key.matches(hash))
                .map(|(name, _)| name),
        };
        match checked {
            Some(name) => {
                self.throttle.release(&keys).await;
                Ok(Actor::ApiKey(name))
            }
            None => {
                drop(reservation);
                Err(AuthError::BadAdminKey)
            }
        }
    }

    /// The most recent session events and their webhook delivery (at most
    /// `limit`, 1 to [`MAX_LIST`]), or only the dead ones.
    pub async fn webhook_deliveries(
        &self,
        limit: u32,
        dead_only: bool,
    ) -> Result<Vec<EventDelivery>, AuthError> {
        check_limit(limit)?;
        Ok(self
            .store
            .list_event_deliveries(i64::from(limit), dead_only)
            .await?)
    }

    /// Sends event `id` (`msg_<n>`, as in its `webhook-id`, or `<n>`) again,
    /// with the same `webhook-id`, at once.
    pub async fn retry_webhook(&self, id: &str) -> Result<(), AuthError> {
        let number = id
            .trim()
            .strip_prefix("msg_")
            .unwrap_or(id.trim())
            .parse::<i64>()
            .map_err(|_| AuthError::UnknownEvent)?;
        if self
            .store
            .retry_session_event(number, Timestamp::now())
            .await?
        {
            Ok(())
        } else {
            Err(AuthError::UnknownEvent)
        }
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

/// A listing's `limit`: 1 to [`MAX_LIST`].
fn check_limit(limit: u32) -> Result<(), AuthError> {
    if (1..=MAX_LIST).contains(&limit) {
        Ok(())
    } else {
        Err(AuthError::invalid(
            "limit",
            format!("The limit must be between 1 and {MAX_LIST}."),
        ))
    }
}

/// An operator's action has no client address or user agent.
static NO_CLIENT: std::sync::LazyLock<ClientInfo> = std::sync::LazyLock::new(ClientInfo::default);
