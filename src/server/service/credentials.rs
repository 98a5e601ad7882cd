//! Credentials: creating an account, signing in with a password, changing
//! it, and re-authenticating for sensitive actions.

use super::{AuthService, Issued, Principal};
use crate::server::{
    client::ClientInfo,
    db::{EventKind, NewUser, UserId, sessions::PasswordChange},
    error::AuthError,
    passwords::{Password, PasswordProblem},
    time::Timestamp,
    tokens::RefreshToken,
};

/// Longest email address (RFC 5321 path limit). The OpenAPI document's
/// `maxLength` for emails.
pub(crate) const MAX_EMAIL_LEN: usize = 254;

/// An email address as the account identity: trimmed for display, lower-cased
/// for uniqueness and lookup.
struct Email {
    display: String,
    normalized: String,
}

impl Email {
    fn parse(raw: &str) -> Result<Email, AuthError> {
        let display = raw.trim();
        if display.is_empty() {
            return Err(AuthError::invalid("email", "Enter your email address."));
        }
        if display.chars().count() > MAX_EMAIL_LEN {
            return Err(AuthError::invalid(
                "email",
                "That email address is too long.",
            ));
        }
        if display.chars().any(char::is_control) || !email_address::EmailAddress::is_valid(display)
        {
            return Err(AuthError::invalid(
                "email",
                "Enter a valid email address, like name@example.com.",
            ));
        }
        Ok(Email {
            display: display.to_string(),
            normalized: display.to_lowercase(),
        })
    }

    fn hints(&self) -> Vec<String> {
        password_hints(&self.normalized)
    }
}

/// Words zxcvbn should treat as guessable for the owner of `email`: the
/// address, its local part and the longer parts of its domain.
fn password_hints(email: &str) -> Vec<String> {
    let email = email.to_lowercase();
    let mut hints = vec![email.clone()];
    if let Some((local, domain)) = email.split_once('@') {
        hints.push(local.to_string());
        hints.extend(
            domain
                .split('.')
                .filter(|p| p.len() > 2)
                .map(str::to_string),
        );
    }
    hints
}

impl AuthService {
    /// Creates an account and signs it in on this device.
    pub async fn register(
        &self,
        email: &str,
        password: &Password,
        confirmation: &Password,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        let email = Email::parse(email)?;
        self.passwords
            .check_new(password, confirmation, email.hints())
            .await
            .map_err(|problem| {
                AuthError::password(
                    password_field(&problem, "password", "password_confirm"),
                    problem,
                )
            })?;
        let hash = self
            .hashed(self.passwords.hash(password).await, client)
            .await?;
        let now = Timestamp::now();
        let user_id = UserId::random();
        let inserted = self
            .store
            .insert_user(&NewUser {
                id: user_id,
                email: &email.display,
                email_normalized: &email.normalized,
                password_hash: &hash,
                now,
            })
            .await?;
        if !inserted {
            return Err(AuthError::EmailTaken);
        }
        let issued = self
            .start_session(user_id, email.display, &hash, client, now)
            .await?;
        self.audit
            .of(EventKind::Registered, Some(&issued.principal), client, None)
            .await;
        Ok(issued)
    }

    /// Checks credentials and starts a session.
    ///
    /// Unknown email and wrong password take the same path (a full argon2
    /// verification, against a dummy hash when there is no account), the same
    /// throttling, and the same answer.
    pub async fn login(
        &self,
        email: &str,
        password: &Password,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        let email = Email::parse(email)?;
        self.passwords
            .check_length(password)
            .map_err(|problem| AuthError::password("password", problem))?;
        let now = Timestamp::now();
        let keys = self.throttle.login_keys(&email.normalized, client);
        // The attempt is counted before the password is checked: a burst of
        // parallel guesses gets no more checks than the limit allows.
        if let Err(throttled) = self.throttle.reserve(&keys, now).await {
            if matches!(throttled, AuthError::Throttled { .. }) {
                self.audit
                    .login_failure(None, client, "throttled", &email.normalized, now)
                    .await;
            }
            return Err(throttled);
        }
        let checked = async {
            let user = self.store.find_user_by_email(&email.normalized).await?;
            let verification = self
                .passwords
                .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
                .await;
            Ok((user, self.hashed(verification, client).await?))
        }
        .await;
        let (user, verification) = match checked {
            Ok(checked) => checked,
            // Nothing was checked (shed, or the database failed): the attempt
            // is given back.
            Err(error) => {
                self.throttle.release(&keys).await;
                return Err(error);
            }
        };
        let user = match user {
            Some(user) if verification.matches => user,
            other => {
                let reason = if other.is_some() {
                    "wrong_password"
                } else {
                    "unknown_email"
                };
                self.audit
                    .login_failure(other.map(|u| u.id), client, reason, &email.normalized, now)
                    .await;
                return Err(AuthError::InvalidCredentials);
            }
        };
        self.throttle.clear(&keys[0]).await?;
        self.throttle.release(&keys[1..]).await;
        // Only if the password just checked is still the current one: a
        // password change that committed meanwhile wins.
        let issued = self
            .start_session(user.id, user.email, &user.password_hash, client, now)
            .await
            .map_err(|error| match error {
                AuthError::PasswordChangedMeanwhile => AuthError::InvalidCredentials,
                other => other,
            })?;
        if verification.needs_rehash {
            self.upgrade_hash(user.id, &user.password_hash, password)
                .await;
        }
        self.audit
            .of(
                EventKind::LoginSucceeded,
                Some(&issued.principal),
                client,
                None,
            )
            .await;
        Ok(issued)
    }

    /// Changes the password after checking the current one, ends every other
    /// session of the user, and gives this session fresh tokens.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &Password,
        new: &Password,
        confirmation: &Password,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        self.passwords
            .check_length(current)
            .map_err(|problem| AuthError::password("current_password", problem))?;
        self.passwords
            .check_new(new, confirmation, password_hints(&principal.email))
            .await
            .map_err(|problem| {
                AuthError::password(
                    password_field(&problem, "new_password", "new_password_confirm"),
                    problem,
                )
            })?;
        self.confirm_password(principal, current, client).await?;
        if new.same_as(current) {
            return Err(AuthError::SamePassword);
        }
        let hash = self.hashed(self.passwords.hash(new).await, client).await?;
        let refresh = RefreshToken::generate();
        let now = Timestamp::now();
        let session_expires_at = self
            .store
            .change_password(&PasswordChange {
                user_id: principal.user_id,
                current_session: principal.session_id,
                new_password_hash: &hash,
                new_token_hash: &refresh.hash(),
                now,
            })
            .await?
            .ok_or(AuthError::SessionEnded)?;
        let principal = Principal {
            authenticated_at: now,
            ..principal.clone()
        };
        self.audit
            .of(EventKind::PasswordChanged, Some(&principal), client, None)
            .await;
        let (access_token, access_expires_at) =
            self.tokens
                .issue_access(principal.user_id, principal.session_id, now)?;
        Ok(Issued {
            principal,
            access_token,
            access_expires_at,
            refresh_token: refresh,
            refresh_expires_at: session_expires_at,
        })
    }

    /// Checks `password` against the user's current hash, throttled like a
    /// login so a stolen session cannot be used to guess the password.
    pub(crate) async fn confirm_password(
        &self,
        principal: &Principal,
        password: &Password,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let now = Timestamp::now();
        let keys = [self.throttle.account(&principal.email.to_lowercase())];
        self.throttle.reserve(&keys, now).await?;
        let checked = async {
            let user = self
                .store
                .find_user(principal.user_id)
                .await?
                .ok_or(AuthError::SessionEnded)?;
            let verification = self
                .passwords
                .verify(password, Some(&user.password_hash))
                .await;
            self.hashed(verification, client).await
        }
        .await;
        match checked {
            Ok(verification) if verification.matches => {
                self.throttle.release(&keys).await;
            }
            // A wrong password: the attempt stands.
            Ok(_) => return Err(AuthError::WrongCurrentPassword),
            Err(error) => {
                self.throttle.release(&keys).await;
                return Err(error);
            }
        }
        Ok(())
    }

    /// Re-hashes with current parameters after a successful login. A failure
    /// here must not fail the login, so it is logged and dropped.
    async fn upgrade_hash(&self, user_id: UserId, old_hash: &str, password: &Password) {
        let result: anyhow::Result<()> = async {
            let new_hash = self.passwords.hash(password).await?;
            self.store
                .upgrade_password_hash(user_id, old_hash, &new_hash)
                .await?;
            Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                tracing::info!(user = %user_id, "password hash upgraded to current parameters")
            }
            Err(error) => {
                tracing::warn!(user = %user_id, error = ?error, "failed to upgrade a password hash")
            }
        }
    }
}

/// A mismatch is about the confirmation field; every other problem is about
/// the password itself.
fn password_field(
    problem: &PasswordProblem,
    password: &'static str,
    confirmation: &'static str,
) -> &'static str {
    match problem {
        PasswordProblem::Mismatch => confirmation,
        _ => password,
    }
}
