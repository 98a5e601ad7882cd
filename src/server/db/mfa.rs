//! Second factors: the authenticator app of an account, its recovery codes,
//! and sign-ins waiting for their second step.
//!
//! Every acceptance is one conditional statement, so two requests racing
//! with the same code, the same recovery code or the same pending sign-in
//! cannot both succeed: a TOTP step is accepted only above the last one
//! (`UPDATE … WHERE last_step < $step`), a recovery code is spent by deleting
//! it, and a pending sign-in is spent by deleting it.

use super::{
    NewEvent, NewMail, RevokeReason, SessionId, Store, StoreContext, StoreResult, UserId, on_pool,
    on_writer,
};
use crate::server::time::Timestamp;

/// An account's authenticator app as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TotpRecord {
    pub secret_sealed: String,
    pub created_at: Timestamp,
    pub enabled_at: Option<Timestamp>,
}

impl TotpRecord {
    pub fn enabled(&self) -> bool {
        self.enabled_at.is_some()
    }
}

/// Whether an account has a second factor, and how many recovery codes it
/// has left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MfaStatus {
    pub totp: bool,
    pub recovery_codes_left: i64,
}

/// A pending sign-in, as its second step finds it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ChallengeRecord {
    pub user_id: UserId,
    pub password_hash: String,
}

pub struct NewChallenge<'a> {
    pub token_hash: &'a [u8],
    pub user_id: UserId,
    pub password_hash: &'a str,
    pub now: Timestamp,
    pub expires_at: Timestamp,
}

/// Confirming an authenticator app: the pending secret `sealed` turns on
/// (if it is still the pending one), with the step its confirming code used,
/// the recovery codes, the event and the notice, in one commit.
pub struct TotpEnable<'a> {
    pub user_id: UserId,
    pub sealed: &'a str,
    pub step: i64,
    pub code_hashes: &'a [Vec<u8>],
    pub event: NewEvent<'a>,
    pub notice: &'a NewMail,
}

/// Turning the authenticator app off: it and the recovery codes deleted,
/// every session but `keep` ended, with the event and the notice.
pub struct TotpDisable<'a> {
    pub user_id: UserId,
    pub keep: SessionId,
    pub event: NewEvent<'a>,
    pub notice: &'a NewMail,
}

macro_rules! replace_codes {
    ($tx:expr, $user:expr, $hashes:expr) => {
        async {
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind($user)
                .execute(&mut *$tx)
                .await?;
            for hash in $hashes {
                sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                    .bind($user)
                    .bind(hash.as_slice())
                    .execute(&mut *$tx)
                    .await?;
            }
            Ok::<_, sqlx::Error>(())
        }
    };
}

impl Store {
    /// The account's authenticator app, confirmed or not.
    pub async fn totp_of(&self, user_id: UserId) -> StoreResult<Option<TotpRecord>> {
        on_pool!(self, pool => sqlx::query_as(
            "SELECT secret_sealed, created_at, enabled_at FROM user_totp WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(pool)
        .await)
        .context("Failed to read an authenticator app")
    }

    /// One round trip for `/auth/me` and the account page.
    pub async fn mfa_status(&self, user_id: UserId) -> StoreResult<MfaStatus> {
        let (totp, left): (i64, i64) = on_pool!(self, pool => sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM user_totp WHERE user_id = $1 AND enabled_at IS NOT NULL), \
             (SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1)",
        )
        .bind(user_id)
        .fetch_one(pool)
        .await)
        .context("Failed to read an account's second factors")?;
        Ok(MfaStatus {
            totp: totp > 0,
            recovery_codes_left: left,
        })
    }

    /// Stores a new, unconfirmed secret, replacing an unconfirmed one;
    /// `false` (nothing written) when the account's app is on already.
    pub async fn put_pending_totp(
        &self,
        user_id: UserId,
        sealed: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        on_writer!(self, pool => sqlx::query(
            "INSERT INTO user_totp (user_id, secret_sealed, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, \
             created_at = excluded.created_at WHERE user_totp.enabled_at IS NULL",
        )
        .bind(user_id)
        .bind(sealed)
        .bind(now)
        .execute(pool)
        .await
        .map(|done| done.rows_affected() == 1))
        .context("Failed to store an authenticator app")
    }

    /// Turns the pending secret on; `false` (nothing changed) when it is no
    /// longer the pending one (set up again, or confirmed, meanwhile).
    pub async fn enable_totp(&self, enable: &TotpEnable<'_>) -> StoreResult<bool> {
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let enabled = sqlx::query(
                "UPDATE user_totp SET enabled_at = $3, last_step = $4 \
                 WHERE user_id = $1 AND secret_sealed = $2 AND enabled_at IS NULL",
            )
            .bind(enable.user_id)
            .bind(enable.sealed)
            .bind(enable.event.now)
            .bind(enable.step)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if enabled != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            replace_codes!(tx, enable.user_id, enable.code_hashes).await?;
            super::events::bind_event(sqlx::query(super::events::INSERT_EVENT), &enable.event)
                .execute(&mut *tx)
                .await?;
            super::mail::insert_mail!(tx, enable.notice, enable.event.now).await?;
            tx.commit().await.map(|()| true)
        }.await)
        .context("Failed to turn on an authenticator app")
    }

    /// Accepts a code of `step` once: `true` when the account's app is on and
    /// no code of this step or a later one was accepted before.
    pub async fn accept_totp_step(&self, user_id: UserId, step: i64) -> StoreResult<bool> {
        on_writer!(self, pool => sqlx::query(
            "UPDATE user_totp SET last_step = $2 \
             WHERE user_id = $1 AND enabled_at IS NOT NULL AND last_step < $2",
        )
        .bind(user_id)
        .bind(step)
        .execute(pool)
        .await
        .map(|done| done.rows_affected() == 1))
        .context("Failed to accept an authenticator code")
    }

    /// Spends a recovery code: `true` when it was one of the account's.
    pub async fn use_recovery_code(&self, user_id: UserId, hash: &[u8]) -> StoreResult<bool> {
        on_writer!(self, pool => sqlx::query(
            "DELETE FROM recovery_codes WHERE user_id = $1 AND code_hash = $2 \
             AND EXISTS (SELECT 1 FROM user_totp t WHERE t.user_id = $1 AND t.enabled_at IS NOT NULL)",
        )
        .bind(user_id)
        .bind(hash)
        .execute(pool)
        .await
        .map(|done| done.rows_affected() == 1))
        .context("Failed to spend a recovery code")
    }

    /// Replaces the recovery codes, with the event; `false` when the
    /// account's app is not on (nothing changed).
    pub async fn replace_recovery_codes(
        &self,
        user_id: UserId,
        code_hashes: &[Vec<u8>],
        event: &NewEvent<'_>,
    ) -> StoreResult<bool> {
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            // A write first, so the transaction holds the row from the start.
            let on = sqlx::query(
                "UPDATE user_totp SET created_at = created_at \
                 WHERE user_id = $1 AND enabled_at IS NOT NULL",
            )
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if on != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            replace_codes!(tx, user_id, code_hashes).await?;
            super::events::bind_event(sqlx::query(super::events::INSERT_EVENT), event)
                .execute(&mut *tx)
                .await?;
            tx.commit().await.map(|()| true)
        }.await)
        .context("Failed to replace recovery codes")
    }

    /// Turns the app off: `None` when it was not on (nothing changed),
    /// otherwise how many other sessions ended.
    pub async fn disable_totp(&self, disable: &TotpDisable<'_>) -> StoreResult<Option<u64>> {
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let removed = sqlx::query(
                "DELETE FROM user_totp WHERE user_id = $1 AND enabled_at IS NOT NULL",
            )
            .bind(disable.user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if removed != 1 {
                tx.rollback().await?;
                return Ok(None);
            }
            for statement in [
                "DELETE FROM recovery_codes WHERE user_id = $1",
                "DELETE FROM mfa_challenges WHERE user_id = $1",
            ] {
                sqlx::query(statement)
                    .bind(disable.user_id)
                    .execute(&mut *tx)
                    .await?;
            }
            let ended = sqlx::query(
                "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 \
                 WHERE user_id = $1 AND revoked_at IS NULL AND id <> $4",
            )
            .bind(disable.user_id)
            .bind(disable.event.now)
            .bind(RevokeReason::MfaDisabled.as_str())
            .bind(disable.keep)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            super::events::bind_event(sqlx::query(super::events::INSERT_EVENT), &disable.event)
                .execute(&mut *tx)
                .await?;
            super::mail::insert_mail!(tx, disable.notice, disable.event.now).await?;
            tx.commit().await.map(|()| Some(ended))
        }.await)
        .context("Failed to turn off an authenticator app")
    }

    /// Records a sign-in waiting for its second step.
    pub async fn create_challenge(&self, challenge: &NewChallenge<'_>) -> StoreResult<()> {
        on_writer!(self, pool => sqlx::query(
            "INSERT INTO mfa_challenges (token_hash, user_id, password_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(challenge.token_hash)
        .bind(challenge.user_id)
        .bind(challenge.password_hash)
        .bind(challenge.now)
        .bind(challenge.expires_at)
        .execute(pool)
        .await
        .map(drop))
        .context("Failed to store a pending sign-in")
    }

    /// Counts one attempt at a pending sign-in, before its code is checked:
    /// the sign-in, while it is live and has attempts left; `None` otherwise.
    pub async fn attempt_challenge(
        &self,
        token_hash: &[u8],
        now: Timestamp,
        max_attempts: i32,
    ) -> StoreResult<Option<ChallengeRecord>> {
        on_writer!(self, pool => sqlx::query_as(
            "UPDATE mfa_challenges SET attempts = attempts + 1 \
             WHERE token_hash = $1 AND expires_at > $2 AND attempts < $3 \
             RETURNING user_id, password_hash",
        )
        .bind(token_hash)
        .bind(now)
        .bind(max_attempts)
        .fetch_optional(pool)
        .await)
        .context("Failed to count an attempt at a pending sign-in")
    }

    /// Whose a live pending sign-in with attempts left is, counting no
    /// attempt (starting a passkey prompt checks nothing).
    pub async fn pending_sign_in_user(
        &self,
        token_hash: &[u8],
        now: Timestamp,
    ) -> StoreResult<Option<UserId>> {
        on_pool!(self, pool => sqlx::query_scalar(
            "SELECT user_id FROM mfa_challenges WHERE token_hash = $1 AND expires_at > $2 \
             AND attempts < $3",
        )
        .bind(token_hash)
        .bind(now)
        .bind(crate::server::service::PENDING_SIGN_IN_ATTEMPTS)
        .fetch_optional(pool)
        .await)
        .context("Failed to look up a pending sign-in")
    }

    /// Spends a pending sign-in: `true` for exactly one caller.
    pub async fn spend_challenge(&self, token_hash: &[u8]) -> StoreResult<bool> {
        on_writer!(self, pool => sqlx::query("DELETE FROM mfa_challenges WHERE token_hash = $1")
            .bind(token_hash)
            .execute(pool)
            .await
            .map(|done| done.rows_affected() == 1))
        .context("Failed to spend a pending sign-in")
    }
}
