//! Two-factor sign-in: an authenticator app (TOTP, RFC 6238) and one-time
//! recovery codes, at the level of ASVS 4.0.3 V2.8.
//!
//! - Set-up needs a fresh sign-in (or the password), and counts for nothing
//!   until a code from the app confirms it; then ten recovery codes are
//!   shown once and stored only as salted hashes.
//! - A right password for such an account starts no session: it leaves a
//!   pending sign-in (five minutes, five attempts, a 256-bit token kept as a
//!   hash) that only [`AuthService::complete_sign_in`] accepts, with a code.
//!   The session it then starts goes through `start_session`, checked
//!   against the password hash the first step verified.
//! - Every code is accepted once: a TOTP step only above the last accepted
//!   one, a recovery code by deleting it, each in one conditional statement.
//! - Guesses count on the pending sign-in and on a per-account throttle key
//!   in the shared throttle store, so the limit holds across instances.
//! - Turning it off, or making new recovery codes, needs the password and a
//!   code; turning it off ends every other session.

use std::time::Duration;

use super::{AuthService, Issued, Principal, audit, throttle::ThrottleKey};
use crate::server::{
    client::ClientInfo,
    db::{
        ChallengeRecord, EventKind, MfaStatus, NewChallenge, TotpDisable, TotpEnable, UserId,
        UserRecord,
    },
    error::AuthError,
    mail::templates::{self, FactorChange},
    mfa::{Code, SecondFactors, totp::TotpSecret},
    passwords::Password,
    time::Timestamp,
    tokens::LinkToken,
};

/// How long a pending sign-in waits for its second step.
pub const PENDING_SIGN_IN_TTL: Duration = Duration::from_secs(5 * 60);
/// Codes a pending sign-in may try before it is void.
pub const PENDING_SIGN_IN_ATTEMPTS: i32 = 5;
/// How long an unconfirmed authenticator app may be confirmed.
pub const SETUP_TTL: Duration = Duration::from_secs(15 * 60);

/// What a right password leads to.
pub enum SignIn {
    /// Signed in.
    Complete(Box<Issued>),
    /// The account has a second factor: no session yet.
    SecondFactor(PendingSignIn),
}

/// A sign-in waiting for its code: the token that names it (for an HttpOnly
/// cookie, or a body-delivery client's `mfa_token`), and when it expires.
pub struct PendingSignIn {
    pub token: LinkToken,
    pub expires_at: Timestamp,
}

/// An authenticator app being set up: the secret as text to type, and the
/// `otpauth://` URI a QR code carries.
#[derive(Clone, Debug)]
pub struct TotpSetup {
    pub secret: String,
    pub otpauth_uri: String,
}

impl AuthService {
    /// Fresh recovery codes, sealed for the page that shows them once (see
    /// `SecondFactors::seal_shown_codes`).
    pub fn seal_shown_codes(&self, principal: &Principal, codes: &[String]) -> String {
        self.factors.seal_shown_codes(principal.session_id, codes)
    }

    pub fn open_shown_codes(&self, principal: &Principal, sealed: &str) -> Option<Vec<String>> {
        self.factors.open_shown_codes(principal.session_id, sealed)
    }

    /// Whether the account has a second factor, and its recovery codes left.
    pub async fn mfa_status(&self, principal: &Principal) -> Result<MfaStatus, AuthError> {
        Ok(self.store.mfa_status(principal.user_id).await?)
    }

    /// After a right password (see `login`): signs in at once, or, for an
    /// account with a second factor, leaves a pending sign-in.
    pub(super) async fn after_password(
        &self,
        user: &UserRecord,
        password_hash: &str,
        client: &ClientInfo,
        now: Timestamp,
    ) -> Result<Option<PendingSignIn>, AuthError> {
        if !self.store.mfa_status(user.id).await?.totp {
            return Ok(None);
        }
        let token = LinkToken::generate();
        let expires_at = now.plus(PENDING_SIGN_IN_TTL);
        self.store
            .create_challenge(&NewChallenge {
                token_hash: &token.hash(),
                user_id: user.id,
                password_hash,
                now,
                expires_at,
            })
            .await?;
        self.audit
            .record(
                EventKind::SecondFactorRequired,
                Some(user.id),
                None,
                client,
                None,
                now,
            )
            .await;
        Ok(Some(PendingSignIn { token, expires_at }))
    }

    /// The second step of a sign-in: the pending sign-in `token` and a code
    /// from the app, or a recovery code. Starts the session.
    pub async fn complete_sign_in(
        &self,
        token: Option<&str>,
        code: &str,
        client: &ClientInfo,
    ) -> Result<Issued, AuthError> {
        let code = Code::parse(code).ok_or(AuthError::InvalidCode)?;
        let now = Timestamp::now();
        let (token, challenge, user) = self.attempt_pending(token, now).await?;
        self.check_code(user.id, &user.email, &code, client, now)
            .await?;
        self.finish_pending(&token, &user, &challenge, code.method(), client, now)
            .await
    }

    /// The last step of a pending sign-in whose second factor was right:
    /// spends it (of two right answers for one pending sign-in, one signs
    /// in) and starts the session against the password it checked.
    pub(super) async fn finish_pending(
        &self,
        token: &LinkToken,
        user: &UserRecord,
        challenge: &ChallengeRecord,
        method: &str,
        client: &ClientInfo,
        now: Timestamp,
    ) -> Result<Issued, AuthError> {
        if !self.store.spend_challenge(&token.hash()).await? {
            return Err(AuthError::SignInExpired);
        }
        self.signed_in_by(user, &challenge.password_hash, Some(method), client, now)
            .await
            .map_err(|error| match error {
                // The password changed since it was checked: sign in again.
                AuthError::PasswordChangedMeanwhile => AuthError::SignInExpired,
                other => other,
            })
    }

    /// A pending sign-in that is live and has attempts left: its record,
    /// with the attempt counted.
    pub(super) async fn attempt_pending(
        &self,
        token: Option<&str>,
        now: Timestamp,
    ) -> Result<(LinkToken, ChallengeRecord, UserRecord), AuthError> {
        let token = token
            .and_then(LinkToken::parse)
            .ok_or(AuthError::SignInExpired)?;
        let challenge = self
            .store
            .attempt_challenge(&token.hash(), now, PENDING_SIGN_IN_ATTEMPTS)
            .await?
            .ok_or(AuthError::SignInExpired)?;
        let user = self
            .store
            .find_user(challenge.user_id)
            .await?
            .ok_or(AuthError::SignInExpired)?;
        Ok((token, challenge, user))
    }

    /// Starts setting up an authenticator app: a new secret, not yet in
    /// force. Needs a sign-in within the re-authentication window, or the
    /// password. Setting up again replaces an unconfirmed secret.
    pub async fn setup_totp(
        &self,
        principal: &Principal,
        password: Option<&Password>,
        client: &ClientInfo,
    ) -> Result<TotpSetup, AuthError> {
        self.require_fresh(principal, password, client).await?;
        let secret = TotpSecret::generate();
        let sealed = self.factors.seal(principal.user_id, &secret);
        if !self
            .store
            .put_pending_totp(principal.user_id, &sealed, Timestamp::now())
            .await?
        {
            return Err(AuthError::TotpAlreadyEnabled);
        }
        Ok(setup_of(&secret, &principal.email))
    }

    /// The set-up waiting to be confirmed, if any (the account page shows it
    /// again after a reload).
    pub async fn pending_totp(
        &self,
        principal: &Principal,
    ) -> Result<Option<TotpSetup>, AuthError> {
        let Some(record) = self.store.totp_of(principal.user_id).await? else {
            return Ok(None);
        };
        if record.enabled() || setup_expired(record.created_at) {
            return Ok(None);
        }
        let secret = self
            .factors
            .open(principal.user_id, &record.secret_sealed)
            .map_err(|error| anyhow::anyhow!("a TOTP secret does not open: {error}"))?;
        Ok(Some(setup_of(&secret, &principal.email)))
    }

    /// Confirms the app being set up with a code from it: two-factor sign-in
    /// is on from now. Answers the recovery codes, shown this once.
    pub async fn enable_totp(
        &self,
        principal: &Principal,
        code: &str,
        client: &ClientInfo,
    ) -> Result<Vec<String>, AuthError> {
        let Some(Code::Totp(digits)) = Code::parse(code) else {
            return Err(AuthError::InvalidCode);
        };
        let record = self
            .store
            .totp_of(principal.user_id)
            .await?
            .ok_or(AuthError::TotpSetupRequired)?;
        if record.enabled() {
            return Err(AuthError::TotpAlreadyEnabled);
        }
        if setup_expired(record.created_at) {
            return Err(AuthError::TotpSetupRequired);
        }
        let now = Timestamp::now();
        let keys = [self.code_key(principal.user_id)];
        let reservation = self.throttle.reserve(&keys, now).await?;
        let secret = self
            .factors
            .open(principal.user_id, &record.secret_sealed)
            .map_err(|error| anyhow::anyhow!("a TOTP secret does not open: {error}"))?;
        let Some(step) = matching_step(&secret, &digits, now) else {
            self.code_refused(principal.user_id, client, reservation, now)
                .await;
            return Err(AuthError::InvalidCode);
        };
        self.throttle.release(&keys).await;
        let (codes, hashes) = SecondFactors::new_recovery_codes(principal.user_id);
        let enabled = self
            .store
            .enable_totp(&TotpEnable {
                user_id: principal.user_id,
                sealed: &record.secret_sealed,
                step,
                code_hashes: &hashes,
                event: audit::event(
                    EventKind::TotpEnabled,
                    Some(principal.user_id),
                    Some(principal.session_id),
                    client,
                    None,
                    now,
                ),
                notice: &self.factor_notice(&principal.email, FactorChange::Enabled),
            })
            .await?;
        if !enabled {
            // Set up again, or confirmed by another request, meanwhile.
            return Err(AuthError::TotpSetupRequired);
        }
        self.mail_queued();
        Ok(codes)
    }

    /// Turns two-factor sign-in off, with the password and a code (from the
    /// app, or a recovery code), and ends every other session. Answers how
    /// many ended.
    pub async fn disable_totp(
        &self,
        principal: &Principal,
        password: &Password,
        code: &str,
        client: &ClientInfo,
    ) -> Result<u64, AuthError> {
        let code = self.confirm_both(principal, password, code, client).await?;
        let now = Timestamp::now();
        let ended = self
            .store
            .disable_totp(&TotpDisable {
                user_id: principal.user_id,
                keep: principal.session_id,
                event: audit::event(
                    EventKind::TotpDisabled,
                    Some(principal.user_id),
                    Some(principal.session_id),
                    client,
                    Some(code.method()),
                    now,
                ),
                notice: &self.factor_notice(&principal.email, FactorChange::Disabled),
            })
            .await?
            .ok_or(AuthError::TotpNotEnabled)?;
        self.mail_queued();
        Ok(ended)
    }

    /// New recovery codes, with the password and a code; the old ones stop
    /// working. Answers the new ones, shown this once.
    pub async fn regenerate_recovery_codes(
        &self,
        principal: &Principal,
        password: &Password,
        code: &str,
        client: &ClientInfo,
    ) -> Result<Vec<String>, AuthError> {
        self.confirm_both(principal, password, code, client).await?;
        let (codes, hashes) = SecondFactors::new_recovery_codes(principal.user_id);
        let now = Timestamp::now();
        let replaced = self
            .store
            .replace_recovery_codes(
                principal.user_id,
                &hashes,
                &audit::event(
                    EventKind::RecoveryCodesRegenerated,
                    Some(principal.user_id),
                    Some(principal.session_id),
                    client,
                    None,
                    now,
                ),
            )
            .await?;
        if !replaced {
            return Err(AuthError::TotpNotEnabled);
        }
        Ok(codes)
    }

    /// The password, then a code: what turning the factor off and making
    /// new recovery codes ask for. Both are throttled.
    async fn confirm_both(
        &self,
        principal: &Principal,
        password: &Password,
        code: &str,
        client: &ClientInfo,
    ) -> Result<Code, AuthError> {
        self.passwords
            .check_length(password)
            .map_err(|problem| AuthError::password("password", problem))?;
        let code = Code::parse(code).ok_or(AuthError::InvalidCode)?;
        if !self.store.mfa_status(principal.user_id).await?.totp {
            return Err(AuthError::TotpNotEnabled);
        }
        self.confirm_password(principal, password, client).await?;
        self.check_code(
            principal.user_id,
            &principal.email,
            &code,
            client,
            Timestamp::now(),
        )
        .await?;
        Ok(code)
    }

    /// Checks a code of an account whose app is on, spending it, under the
    /// account's code throttle. A used recovery code is audited and mailed.
    async fn check_code(
        &self,
        user_id: UserId,
        email: &str,
        code: &Code,
        client: &ClientInfo,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        let keys = [self.code_key(user_id)];
        let reservation = self.throttle.reserve(&keys, now).await?;
        let accepted = async {
            match code {
                Code::Totp(digits) => {
                    let Some(record) = self.store.totp_of(user_id).await? else {
                        return Ok(false);
                    };
                    if !record.enabled() {
                        return Ok(false);
                    }
                    let secret = self
                        .factors
                        .open(user_id, &record.secret_sealed)
                        .map_err(|error| anyhow::anyhow!("a TOTP secret does not open: {error}"))?;
                    match matching_step(&secret, digits, now) {
                        // Refused when this step, or a later one, was used.
                        Some(step) => Ok(self.store.accept_totp_step(user_id, step).await?),
                        None => Ok(false),
                    }
                }
                Code::Recovery(normalized) => Ok(self
                    .store
                    .use_recovery_code(
                        user_id,
                        &SecondFactors::recovery_code_hash(user_id, normalized),
                    )
                    .await?),
            }
        }
        .await;
        match accepted {
            Ok(true) => {
                self.throttle.release(&keys).await;
            }
            Ok(false) => {
                self.code_refused(user_id, client, reservation, now).await;
                return Err(AuthError::InvalidCode);
            }
            Err(error) => {
                self.throttle.release(&keys).await;
                return Err(error);
            }
        }
        if matches!(code, Code::Recovery(_)) {
            let left = self.store.mfa_status(user_id).await?.recovery_codes_left;
            let detail = format!("{left} left");
            self.audit
                .record(
                    EventKind::RecoveryCodeUsed,
                    Some(user_id),
                    None,
                    client,
                    Some(&detail),
                    now,
                )
                .await;
            self.store
                .queue_mail(
                    &self.factor_notice(email, FactorChange::RecoveryCodeUsed { left }),
                    now,
                )
                .await?;
            self.mail_queued();
        }
        Ok(())
    }

    /// A refused code: audited (never the code), and its attempt stands.
    async fn code_refused(
        &self,
        user_id: UserId,
        client: &ClientInfo,
        reservation: super::throttle::Reservation,
        now: Timestamp,
    ) {
        self.audit
            .record(
                EventKind::SecondFactorFailed,
                Some(user_id),
                None,
                client,
                None,
                now,
            )
            .await;
        self.audit
            .locks(reservation, Some(user_id), client, now)
            .await;
    }

    /// The account's code counter, shared by every instance.
    fn code_key(&self, user_id: UserId) -> ThrottleKey {
        self.throttle.code_key(user_id)
    }

    fn factor_notice(&self, email: &str, change: FactorChange) -> crate::server::db::NewMail {
        templates::second_factor(email, change, &self.recovery.links.forgot_password())
    }
}

fn setup_of(secret: &TotpSecret, email: &str) -> TotpSetup {
    TotpSetup {
        secret: secret.base32(),
        otpauth_uri: secret.otpauth_uri(email),
    }
}

fn setup_expired(created_at: Timestamp) -> bool {
    Timestamp::now() > created_at.plus(SETUP_TTL)
}

/// The step `digits` is the code of at `now`, within one step of skew.
fn matching_step(secret: &TotpSecret, digits: &str, now: Timestamp) -> Option<i64> {
    let seconds = u64::try_from(now.unix_seconds()).ok()?;
    secret
        .matching_step(digits, seconds)
        .ok()
        .flatten()
        .and_then(|step| i64::try_from(step).ok())
}
