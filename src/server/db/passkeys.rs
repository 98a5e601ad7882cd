//! Passkeys and the WebAuthn ceremonies in flight. A ceremony's state is
//! spent by the one statement that takes it (`DELETE … RETURNING`), so two
//! requests finishing one ceremony cannot both succeed, on any instance.

use uuid::Uuid;

use super::{NewEvent, NewMail, Store, StoreContext, StoreResult, UserId, on_pool, on_writer};
use crate::server::time::Timestamp;

/// What a ceremony is for; stored in `webauthn_challenges.purpose`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ceremony {
    Register,
    SignIn,
    /// A passkey as the second step of a pending sign-in.
    SecondStep,
}

impl Ceremony {
    fn as_str(self) -> &'static str {
        match self {
            Ceremony::Register => "register",
            Ceremony::SignIn => "sign_in",
            Ceremony::SecondStep => "second_step",
        }
    }
}

/// A passkey as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PasskeyRecord {
    pub id: Uuid,
    pub user_id: UserId,
    /// The library's record, as JSON.
    pub credential: String,
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

pub struct NewPasskey<'a> {
    pub id: Uuid,
    pub user_id: UserId,
    pub credential_id: &'a [u8],
    pub credential: &'a str,
    pub name: &'a str,
    pub event: NewEvent<'a>,
    pub notice: &'a NewMail,
}

impl Store {
    /// Stores a ceremony's state under the hash of its id.
    pub async fn start_ceremony(
        &self,
        id_hash: &[u8],
        ceremony: Ceremony,
        user_id: Option<UserId>,
        state: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        on_writer!(self, pool => sqlx::query(
            "INSERT INTO webauthn_challenges (id, purpose, user_id, state, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id_hash)
        .bind(ceremony.as_str())
        .bind(user_id)
        .bind(state)
        .bind(now)
        .bind(expires_at)
        .execute(pool)
        .await
        .map(drop))
        .context("Failed to store a WebAuthn ceremony")
    }

    /// Takes a live ceremony's state, once: `None` when it is unknown, was
    /// taken, expired, or belongs to another account or purpose.
    pub async fn take_ceremony(
        &self,
        id_hash: &[u8],
        ceremony: Ceremony,
        user_id: Option<UserId>,
        now: Timestamp,
    ) -> StoreResult<Option<String>> {
        on_writer!(self, pool => sqlx::query_scalar(
            "DELETE FROM webauthn_challenges WHERE id = $1 AND purpose = $2 \
             AND (user_id = $3 OR ($3 IS NULL AND user_id IS NULL)) AND expires_at > $4 \
             RETURNING state",
        )
        .bind(id_hash)
        .bind(ceremony.as_str())
        .bind(user_id)
        .bind(now)
        .fetch_optional(pool)
        .await)
        .context("Failed to take a WebAuthn ceremony")
    }

    /// Stores a new passkey with its event and notice; `false` when its
    /// credential is registered already (to any account).
    pub async fn add_passkey(&self, passkey: &NewPasskey<'_>) -> StoreResult<bool> {
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let added = sqlx::query(
                "INSERT INTO passkeys (id, user_id, credential_id, credential, name, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (credential_id) DO NOTHING",
            )
            .bind(passkey.id)
            .bind(passkey.user_id)
            .bind(passkey.credential_id)
            .bind(passkey.credential)
            .bind(passkey.name)
            .bind(passkey.event.now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if added != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            super::events::bind_event(sqlx::query(super::events::INSERT_EVENT), &passkey.event)
                .execute(&mut *tx)
                .await?;
            super::mail::insert_mail!(tx, passkey.notice, passkey.event.now).await?;
            tx.commit().await.map(|()| true)
        }.await)
        .context("Failed to store a passkey")
    }

    pub async fn passkeys_of(&self, user_id: UserId) -> StoreResult<Vec<PasskeyRecord>> {
        on_pool!(self, pool => sqlx::query_as(
            "SELECT id, user_id, credential, name, created_at, last_used_at FROM passkeys \
             WHERE user_id = $1 ORDER BY created_at",
        )
        .bind(user_id)
        .fetch_all(pool)
        .await)
        .context("Failed to list passkeys")
    }

    /// The passkey of `credential_id`, if it is `user_id`'s.
    pub async fn passkey_by_credential(
        &self,
        user_id: UserId,
        credential_id: &[u8],
    ) -> StoreResult<Option<PasskeyRecord>> {
        on_pool!(self, pool => sqlx::query_as(
            "SELECT id, user_id, credential, name, created_at, last_used_at FROM passkeys \
             WHERE user_id = $1 AND credential_id = $2",
        )
        .bind(user_id)
        .bind(credential_id)
        .fetch_optional(pool)
        .await)
        .context("Failed to look up a passkey")
    }

    /// Records a use: the library's updated record (counter, backup flags)
    /// when it changed, and when. `false` when the passkey was removed
    /// meanwhile.
    pub async fn passkey_used(
        &self,
        id: Uuid,
        credential: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        on_writer!(self, pool => sqlx::query(
            "UPDATE passkeys SET last_used_at = $2, credential = COALESCE($3, credential) \
             WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .bind(credential)
        .execute(pool)
        .await
        .map(|done| done.rows_affected() == 1))
        .context("Failed to record a passkey's use")
    }

    /// Removes one of the account's passkeys, with the event and notice;
    /// `false` when it has none of that id.
    pub async fn remove_passkey(
        &self,
        user_id: UserId,
        id: Uuid,
        event: &NewEvent<'_>,
        notice: &NewMail,
    ) -> StoreResult<bool> {
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let removed = sqlx::query("DELETE FROM passkeys WHERE id = $1 AND user_id = $2")
                .bind(id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if removed != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            super::events::bind_event(sqlx::query(super::events::INSERT_EVENT), event)
                .execute(&mut *tx)
                .await?;
            super::mail::insert_mail!(tx, notice, event.now).await?;
            tx.commit().await.map(|()| true)
        }.await)
        .context("Failed to remove a passkey")
    }
}
