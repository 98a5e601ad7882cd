//! Credentials: creating an account, signing in with a password, changing
//! it, and re-authenticating for sensitive actions.

use super::{AuthService, Issued, Principal, SignIn};
use crate::server::{
    client::ClientInfo,
    db::{EventKind, NewUser, Registration, UserId, sessions::PasswordChange},
    emails::{Email, EmailProblem},
    error::AuthError,
    passwords::{Password, PasswordProblem},
    time::Timestamp,
    tokens::RefreshToken,
};

impl From<EmailProblem> for AuthError {
    fn from(problem: EmailProblem) -> Self {
        AuthError::invalid("email", problem.to_string())
    }
}

/// The throttle and device-cookie key of a signed-in account's email.
pub(super) fn account_key(email: &str) -> String {
    Email::parse_existing(email).map_or_else(|_| email.to_lowercase(), |email| email.normalized)
}

fn hints(email: &Email) -> Vec<String> {
    password_hints(&email.normalized)
}

/// Words zxcvbn should treat as guessable for the owner of `email`: the
/// address, its local part and the longer parts of its domain.
pub(super) fn password_hints(email: &str) -> Vec<String> {
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
    /// Creates an account and mails it a link to confirm its address. Signs
    /// no one in, and answers the same (after the same work: the checks,
    /// the throttle, one argon2 hash, one transaction that queues one mail)
    /// when the address already has an account: its owner is then mailed
    /// that someone tried, and nothing else happens. The person signs in
    /// with the password they chose.
    pub async fn register(
        &self,
        email: &str,
        password: &Password,
        confirmation: &Password,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let email = Email::parse_new(email)?;
        self.passwords
            .check_new(password, confirmation, hints(&email))
            .await
            .map_err(|problem| {
                AuthError::password(
                    password_field(&problem, "password", "password_confirm"),
                    problem,
                )
            })?;
        // Every registration counts against the client's network and the
        // address, before the expensive hash: creating accounts in bulk, or
        // pestering an address's owner with "someone tried" mail, is slowed
        // down like guessing.
        let now = Timestamp::now();
        let keys = self.throttle.registration_keys(&email.normalized, client);
        let reservation = self.throttle.reserve(&keys, now).await?;
        let hash = match self
            .hashed(self.passwords.hash(password).await, client)
            .await
        {
            Ok(hash) => hash,
            // Shed under load: nothing was done, so nothing is counted.
            Err(error) => {
                self.throttle.release(&keys).await;
                return Err(error);
            }
        };
        self.audit.locks(reservation, None, client, now).await;
        let user_id = UserId::random();
        let link = self.verification_link(&email.display);
        // An account registered before domains were normalised to punycode
        // is stored under its Unicode form: the same address all the same.
        let legacy = match &email.legacy_normalized {
            Some(_) => self.store.find_user_by_email(email.lookup_keys()).await?,
            None => None,
        };
        let outcome = match legacy {
            Some(owner) => {
                self.store
                    .queue_mail(&self.address_in_use_notice(&owner.email), now)
                    .await?;
                Registration::Taken(owner.id)
            }
            None => {
                self.store
                    .register_user(
                        &NewUser {
                            id: user_id,
                            email: &email.display,
                            email_normalized: &email.normalized,
                            password_hash: &hash,
                            now,
                        },
                        &link.for_user(user_id, now),
                        |owner| self.address_in_use_notice(owner),
                    )
                    .await?
            }
        };
        self.mail_queued();
        let (kind, user, detail) = match outcome {
            Registration::Created => (EventKind::Registered, user_id, None),
            Registration::Taken(owner) => (
                EventKind::RegistrationRefused,
                owner,
                Some("address_in_use"),
            ),
        };
        self.audit
            .record(kind, Some(user), None, client, detail, now)
            .await;
        Ok(())
    }

    /// Checks credentials and starts a session, or, for an account with a
    /// second factor, a pending sign-in (see `second_factor`).
    ///
    /// Unknown email and wrong password take the same path (a full argon2
    /// verification, against a dummy hash when there is no account), the same
    /// throttling, and the same answer.
    pub async fn login(
        &self,
        email: &str,
        password: &Password,
        client: &ClientInfo,
    ) -> Result<SignIn, AuthError> {
        let email = Email::parse_existing(email)?;
        self.passwords
            .check_length(password)
            .map_err(|problem| AuthError::password("password", problem))?;
        let now = Timestamp::now();
        let device = self.trusted_device(&email.normalized, client);
        let keys = self.throttle.login_keys(&email.normalized, device, client);
        // The attempt is counted before the password is checked: a burst of
        // parallel guesses gets no more checks than the limit allows. A
        // refused attempt writes nothing (see `Throttle::reserve`).
        let reservation = self.throttle.reserve(&keys, now).await?;
        let checked = async {
            let user = self.store.find_user_by_email(email.lookup_keys()).await?;
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
                let user_id = other.map(|u| u.id);
                self.audit
                    .login_failure(user_id, client, reason, &email.normalized, now)
                    .await;
                self.audit.locks(reservation, user_id, client, now).await;
                return Err(AuthError::InvalidCredentials);
            }
        };
        self.throttle.clear(&keys[0]).await?;
        self.throttle.release(&keys[1..]).await;
        if user.disabled {
            // Only someone who knows the password learns this.
            self.audit
                .login_failure(
                    Some(user.id),
                    client,
                    "account_disabled",
                    &email.normalized,
                    now,
                )
                .await;
            return Err(AuthError::AccountDisabled);
        }
        if self.requires_verified_email() && !user.email_verified {
            // Only someone who knows the password learns this.
            self.audit
                .login_failure(
                    Some(user.id),
                    client,
                    "email_not_verified",
                    &email.normalized,
                    now,
                )
                .await;
            return Err(AuthError::EmailNotVerified);
        }
        // The hash the password was just checked against, or its upgrade to
        // current parameters.
        let mut password_hash = user.password_hash.clone();
        if verification.needs_rehash
            && let Some(upgraded) = self
                .upgrade_hash(user.id, &user.password_hash, password)
                .await
        {
            password_hash = upgraded;
        }
        if let Some(pending) = self
            .after_password(&user, &password_hash, client, now)
            .await?
        {
            return Ok(SignIn::SecondFactor(pending));
        }
        // Only if the password just checked is still the current one: a
        // password change that committed meanwhile wins.
        let mut issued = self
            .start_session(
                user.id,
                user.email,
                user.email_verified,
                &password_hash,
                client,
                now,
            )
            .await
            .map_err(|error| match error {
                AuthError::PasswordChangedMeanwhile => AuthError::InvalidCredentials,
                other => other,
            })?;
        issued.device_cookie = Some(self.tokens.issue_device(&email.normalized));
        self.audit
            .of(
                EventKind::LoginSucceeded,
                Some(&issued.principal),
                client,
                None,
            )
            .await;
        self.notice_new_device(&issued.principal, client, now).await;
        Ok(SignIn::Complete(Box::new(issued)))
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
        let refresh = RefreshToken::generate(principal.session_id);
        let now = Timestamp::now();
        let session_expires_at = self
            .store
            .change_password(&PasswordChange {
                user_id: principal.user_id,
                current_session: principal.session_id,
                new_password_hash: &hash,
                new_token_hash: &refresh.hash(),
                now,
                access_expires_at: self.access_exp(now),
                notice: &self.password_changed_notice(
                    &principal.email,
                    "Your other devices have been signed out.",
                ),
            })
            .await?
            .ok_or(AuthError::SessionEnded)?;
        self.mail_queued();
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
        let device_cookie = self.tokens.issue_device(&account_key(&principal.email));
        Ok(Issued {
            principal,
            access_token,
            access_expires_at,
            refresh_token: refresh,
            refresh_expires_at: session_expires_at,
            device_cookie: Some(device_cookie),
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
        // The same keys sign-in uses, without the address's.
        let account = account_key(&principal.email);
        let device = self.trusted_device(&account, client);
        let keys = self.throttle.password_keys(&account, device);
        let reservation = self.throttle.reserve(&keys, now).await?;
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
            Ok(_) => {
                self.audit
                    .locks(reservation, Some(principal.user_id), client, now)
                    .await;
                return Err(AuthError::WrongCurrentPassword);
            }
            Err(error) => {
                self.throttle.release(&keys).await;
                return Err(error);
            }
        }
        Ok(())
    }

    /// The device id of the client's device cookie when it is one this
    /// server issued to a browser that signed in as `account`.
    fn trusted_device(&self, account: &str, client: &ClientInfo) -> Option<String> {
        let cookie = client.device.as_ref()?;
        self.tokens.verify_device(account, &cookie.0)
    }

    /// Re-hashes with current parameters after a right password: the new
    /// hash, when it replaced `old_hash`. A failure here must not fail the
    /// login, so it is logged and dropped.
    async fn upgrade_hash(
        &self,
        user_id: UserId,
        old_hash: &str,
        password: &Password,
    ) -> Option<String> {
        let result: anyhow::Result<Option<String>> = async {
            let new_hash = self.passwords.hash(password).await?;
            let replaced = self
                .store
                .upgrade_password_hash(user_id, old_hash, &new_hash)
                .await?;
            Ok(replaced.then_some(new_hash))
        }
        .await;
        match result {
            Ok(upgraded) => {
                if upgraded.is_some() {
                    tracing::info!(user = %user_id, "password hash upgraded to current parameters");
                }
                upgraded
            }
            Err(error) => {
                tracing::warn!(user = %user_id, error = ?error, "failed to upgrade a password hash");
                None
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
