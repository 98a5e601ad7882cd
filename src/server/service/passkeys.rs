//! Passkeys: adding one (a fresh sign-in or the password), signing in with
//! one (no email, no password), the list, removing one.
//!
//! - The library (webauthn-rs, its passkey API) checks every answer: the
//!   challenge, the origin and relying party, the signature, user
//!   verification (required: a passkey counts as both factors), and the
//!   sign counter.
//! - Ceremonies are stored server-side, single use and five minutes long,
//!   so any instance finishes what another started.
//! - A passkey sign-in starts its session through `start_session`, so
//!   rotation, logout, revocation and the device list apply unchanged.
//! - Removing a passkey cannot strand an account with two-factor sign-in:
//!   that is passed with the app or a recovery code, never a passkey.

use uuid::Uuid;
use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, CredentialID, DiscoverableAuthentication,
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, RequestChallengeResponse,
};
use webauthn_rs_proto::ResidentKeyRequirement;

use super::{AuthService, Issued, Principal, audit};
use crate::server::{
    client::{ClientInfo, describe_device},
    db::{EventKind, NewPasskey, PasskeyRecord, UserId, passkeys::Ceremony},
    error::AuthError,
    mail::templates,
    passkeys::CEREMONY_TTL,
    passwords::Password,
    time::Timestamp,
    tokens::LinkToken,
};

/// Longest passkey name, in characters.
pub const MAX_PASSKEY_NAME: usize = 64;

/// A ceremony begun: its id (the client sends it back with the answer) and
/// the options for `navigator.credentials.create/get`.
pub struct CeremonyStart<T> {
    pub id: LinkToken,
    pub options: T,
}

impl AuthService {
    /// Starts adding a passkey to the signed-in account.
    pub async fn start_passkey_registration(
        &self,
        principal: &Principal,
        password: Option<&Password>,
        client: &ClientInfo,
    ) -> Result<CeremonyStart<CreationChallengeResponse>, AuthError> {
        self.require_fresh(principal, password, client).await?;
        let existing: Vec<CredentialID> = self
            .store
            .passkeys_of(principal.user_id)
            .await?
            .iter()
            .filter_map(|record| stored(record).ok())
            .map(|passkey| passkey.cred_id().clone())
            .collect();
        let (mut options, state) = self
            .passkeys
            .start_passkey_registration(
                principal.user_id.0,
                &principal.email,
                &principal.email,
                Some(existing),
            )
            .map_err(|error| anyhow::anyhow!("starting a passkey registration: {error}"))?;
        // Discoverable: a sign-in with it names no account first.
        if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
            selection.require_resident_key = true;
            selection.resident_key = Some(ResidentKeyRequirement::Required);
        }
        let id = self
            .begin(Ceremony::Register, Some(principal.user_id), &state)
            .await?;
        Ok(CeremonyStart { id, options })
    }

    /// Finishes adding a passkey: the browser's answer to the ceremony
    /// `ceremony` started. `name` defaults to the device's.
    pub async fn finish_passkey_registration(
        &self,
        principal: &Principal,
        ceremony: &str,
        credential: &RegisterPublicKeyCredential,
        name: Option<&str>,
        client: &ClientInfo,
    ) -> Result<PasskeyRecord, AuthError> {
        let name = passkey_name(name, client)?;
        let state: PasskeyRegistration = self
            .take(Ceremony::Register, Some(principal.user_id), ceremony)
            .await?;
        let passkey = self
            .passkeys
            .finish_passkey_registration(credential, &state)
            .map_err(|error| {
                tracing::info!(error = %error, "a passkey registration was refused");
                AuthError::invalid(
                    "credential",
                    "The passkey's answer could not be verified. Try adding it again.",
                )
            })?;
        let now = Timestamp::now();
        let id = Uuid::new_v4();
        let detail = format!("passkey {name}");
        let credential = serde_json::to_string(&passkey)
            .map_err(|error| anyhow::anyhow!("serialising a passkey: {error}"))?;
        let added = self
            .store
            .add_passkey(&NewPasskey {
                id,
                user_id: principal.user_id,
                credential_id: passkey.cred_id().as_ref(),
                credential: &credential,
                name: &name,
                event: audit::event(
                    EventKind::PasskeyAdded,
                    Some(principal.user_id),
                    Some(principal.session_id),
                    client,
                    Some(&detail),
                    now,
                ),
                notice: &templates::passkey_changed(
                    &principal.email,
                    &name,
                    true,
                    &self.recovery.links.forgot_password(),
                ),
            })
            .await?;
        if !added {
            return Err(AuthError::PasskeyExists);
        }
        self.mail_queued();
        Ok(PasskeyRecord {
            id,
            user_id: principal.user_id,
            credential,
            name,
            created_at: now,
            last_used_at: None,
        })
    }

    /// Starts a passkey sign-in: no account is named yet. Each start counts
    /// against the client's network until its sign-in finishes (see
    /// `Throttle::passkey_keys`).
    pub async fn start_passkey_sign_in(
        &self,
        client: &ClientInfo,
    ) -> Result<CeremonyStart<RequestChallengeResponse>, AuthError> {
        let now = Timestamp::now();
        let reservation = self
            .throttle
            .reserve(&self.throttle.passkey_keys(client), now)
            .await?;
        self.audit.locks(reservation, None, client, now).await;
        let (mut options, state) = self
            .passkeys
            .start_discoverable_authentication()
            .map_err(|error| anyhow::anyhow!("starting a passkey sign-in: {error}"))?;
        // A button asks, not the email field's autofill.
        options.mediation = None;
        let id = self.begin(Ceremony::SignIn, None, &state).await?;
        Ok(CeremonyStart { id, options })
    }

    /// Finishes a passkey sign-in and starts the session.
    pub async fn finish_passkey_sign_in(
        &self,
        ceremony: &str,
        credential: &PublicKeyCredential,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        let state: DiscoverableAuthentication = self.take(Ceremony::SignIn, None, ceremony).await?;
        let (user, credential_id) = self
            .passkeys
            .identify_discoverable_authentication(credential)
            .map_err(|_| AuthError::PasskeyRefused)?;
        let user_id = UserId(user);
        let record = self
            .store
            .passkey_by_credential(user_id, credential_id)
            .await?
            .ok_or(AuthError::PasskeyRefused)?;
        let passkey = stored(&record)?;
        let result = self
            .passkeys
            .finish_discoverable_authentication_v2(credential, state, &passkey)
            .map_err(|error| {
                tracing::info!(error = %error, "a passkey sign-in was refused");
                AuthError::PasskeyRefused
            })?;
        let now = Timestamp::now();
        self.record_use(&record, &result, now).await?;
        let user = self
            .store
            .find_user(user_id)
            .await?
            .ok_or(AuthError::PasskeyRefused)?;
        if !user.disabled && self.requires_verified_email() && !user.email_verified {
            return Err(AuthError::EmailNotVerified);
        }
        // With user verification, a passkey is both factors: no code follows.
        let issued = self
            .signed_in_by(&user, &user.password_hash, Some("passkey"), client, now)
            .await
            .map_err(|error| match error {
                AuthError::PasswordChangedMeanwhile => AuthError::CeremonyExpired,
                other => other,
            })?;
        self.throttle
            .release(&self.throttle.passkey_keys(client))
            .await;
        Ok(issued)
    }

    /// Starts a passkey as the second step of the pending sign-in `token`
    /// (in place of a code): the account's passkeys are the ones allowed.
    pub async fn start_passkey_second_step(
        &self,
        token: Option<&str>,
    ) -> Result<CeremonyStart<RequestChallengeResponse>, AuthError> {
        let token = token
            .and_then(LinkToken::parse)
            .ok_or(AuthError::SignInExpired)?;
        let user_id = self
            .store
            .pending_sign_in_user(&token.hash(), Timestamp::now())
            .await?
            .ok_or(AuthError::SignInExpired)?;
        let passkeys: Vec<Passkey> = self
            .store
            .passkeys_of(user_id)
            .await?
            .iter()
            .map(stored)
            .collect::<Result<_, _>>()?;
        if passkeys.is_empty() {
            return Err(AuthError::PasskeyRefused);
        }
        let (options, state) = self
            .passkeys
            .start_passkey_authentication(&passkeys)
            .map_err(|error| anyhow::anyhow!("starting a passkey second step: {error}"))?;
        let id = self
            .begin(Ceremony::SecondStep, Some(user_id), &state)
            .await?;
        Ok(CeremonyStart { id, options })
    }

    /// Finishes the second step of a pending sign-in with a passkey: it
    /// counts as an attempt at it, like a code, and starts the session.
    pub async fn finish_passkey_second_step(
        &self,
        token: Option<&str>,
        ceremony: &str,
        credential: &PublicKeyCredential,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        let now = Timestamp::now();
        let (token, challenge, user) = self.attempt_pending(token, now).await?;
        let state: PasskeyAuthentication = self
            .take(Ceremony::SecondStep, Some(user.id), ceremony)
            .await?;
        let record = self
            .store
            .passkey_by_credential(user.id, credential.get_credential_id())
            .await?
            .ok_or(AuthError::PasskeyRefused)?;
        let result = self
            .passkeys
            .finish_passkey_authentication(credential, &state)
            .map_err(|error| {
                tracing::info!(error = %error, "a passkey second step was refused");
                AuthError::PasskeyRefused
            })?;
        self.record_use(&record, &result, now).await?;
        self.finish_pending(&token, &user, &challenge, "passkey", client, now)
            .await
    }

    /// Stores what a use changed (counter, backup flags) and when; refused
    /// when the passkey was removed meanwhile.
    async fn record_use(
        &self,
        record: &PasskeyRecord,
        result: &AuthenticationResult,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        let mut passkey = stored(record)?;
        let updated = match passkey.update_credential(result) {
            Some(true) => Some(
                serde_json::to_string(&passkey)
                    .map_err(|error| anyhow::anyhow!("serialising a passkey: {error}"))?,
            ),
            _ => None,
        };
        if !self
            .store
            .passkey_used(record.id, updated.as_deref(), now)
            .await?
        {
            return Err(AuthError::PasskeyRefused);
        }
        Ok(())
    }

    /// The account's passkeys, oldest first.
    pub async fn list_passkeys(
        &self,
        principal: &Principal,
    ) -> Result<Vec<PasskeyRecord>, AuthError> {
        Ok(self.store.passkeys_of(principal.user_id).await?)
    }

    /// Removes one of the account's passkeys (a fresh sign-in or the
    /// password). Someone else's is answered like one that does not exist.
    pub async fn remove_passkey(
        &self,
        principal: &Principal,
        id: &str,
        password: Option<&Password>,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let id = Uuid::parse_str(id).map_err(|_| AuthError::UnknownPasskey)?;
        self.require_fresh(principal, password, client).await?;
        let name = self
            .store
            .passkeys_of(principal.user_id)
            .await?
            .into_iter()
            .find(|record| record.id == id)
            .map(|record| record.name)
            .ok_or(AuthError::UnknownPasskey)?;
        let now = Timestamp::now();
        let detail = format!("passkey {name}");
        let removed = self
            .store
            .remove_passkey(
                principal.user_id,
                id,
                &audit::event(
                    EventKind::PasskeyRemoved,
                    Some(principal.user_id),
                    Some(principal.session_id),
                    client,
                    Some(&detail),
                    now,
                ),
                &templates::passkey_changed(
                    &principal.email,
                    &name,
                    false,
                    &self.recovery.links.forgot_password(),
                ),
            )
            .await?;
        if !removed {
            return Err(AuthError::UnknownPasskey);
        }
        self.mail_queued();
        Ok(())
    }

    /// Stores a ceremony's state; its id, for the client.
    async fn begin<S: serde::Serialize>(
        &self,
        ceremony: Ceremony,
        user_id: Option<UserId>,
        state: &S,
    ) -> Result<LinkToken, AuthError> {
        let id = LinkToken::generate();
        let now = Timestamp::now();
        let state = serde_json::to_string(state)
            .map_err(|error| anyhow::anyhow!("serialising a WebAuthn state: {error}"))?;
        self.store
            .start_ceremony(
                &id.hash(),
                ceremony,
                user_id,
                &state,
                now,
                now.plus(CEREMONY_TTL),
            )
            .await?;
        Ok(id)
    }

    /// Takes a ceremony's state, once.
    async fn take<S: serde::de::DeserializeOwned>(
        &self,
        ceremony: Ceremony,
        user_id: Option<UserId>,
        id: &str,
    ) -> Result<S, AuthError> {
        let id = LinkToken::parse(id).ok_or(AuthError::CeremonyExpired)?;
        let state = self
            .store
            .take_ceremony(&id.hash(), ceremony, user_id, Timestamp::now())
            .await?
            .ok_or(AuthError::CeremonyExpired)?;
        Ok(serde_json::from_str(&state)
            .map_err(|error| anyhow::anyhow!("a stored WebAuthn state does not parse: {error}"))?)
    }
}

/// The library's record of a stored passkey.
fn stored(record: &PasskeyRecord) -> Result<Passkey, AuthError> {
    Ok(serde_json::from_str(&record.credential)
        .map_err(|error| anyhow::anyhow!("a stored passkey does not parse: {error}"))?)
}

/// The name a person gave, trimmed, or the device's.
fn passkey_name(name: Option<&str>, client: &ClientInfo) -> Result<String, AuthError> {
    let name = name.map(str::trim).filter(|name| !name.is_empty());
    let Some(name) = name else {
        return Ok(describe_device(client.user_agent()));
    };
    if name.chars().count() > MAX_PASSKEY_NAME || name.chars().any(char::is_control) {
        return Err(AuthError::invalid(
            "name",
            format!(
                "A passkey's name is 1 to {MAX_PASSKEY_NAME} characters, without control characters."
            ),
        ));
    }
    Ok(name.to_string())
}
