use super::{StoreContext, StoreResult};
use uuid::Uuid;

use super::{
    ActiveSession, NewEvent, NewSession, RefreshTokenRecord, RevokeReason, SessionId,
    SessionRecord, Store, UserId, on_pool, on_writer,
};
use crate::server::time::Timestamp;

const REVOKE_ONE: &str = "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 \
     WHERE id = $1 AND revoked_at IS NULL";
const REVOKE_OF_USER: &str = "UPDATE sessions SET revoked_at = $3, revoked_reason = $4 \
     WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL";

/// The per-request revocation check (see [`Store::active_session`]), also
/// run by [`super::inline_reads`].
pub(super) const ACTIVE_SESSION: &str = "SELECT s.id AS session_id, s.user_id, u.email, \
      u.email_verified_at IS NOT NULL AS email_verified, s.authenticated_at, \
      EXISTS (SELECT 1 FROM user_totp t \
              WHERE t.user_id = s.user_id AND t.enabled_at IS NOT NULL) AS totp, \
      (SELECT COUNT(*) FROM recovery_codes c WHERE c.user_id = s.user_id) \
          AS recovery_codes_left \
      FROM sessions s JOIN users u ON u.id = s.user_id \
      WHERE s.id = $1 AND s.user_id = $2 AND s.revoked_at IS NULL AND s.expires_at > $3";

/// The columns of a [`RefreshTokenRecord`], from the token, its session and
/// its user; a query adds its `WHERE`.
macro_rules! refresh_token_select {
    () => {
        "SELECT t.session_id, s.user_id, u.email, u.email_verified_at IS NOT NULL AS email_verified, t.generation, t.retired_at, s.rotation_key, \
         s.authenticated_at, s.last_used_at, s.expires_at, s.revoked_at, t.token_hash \
         FROM refresh_tokens t \
         JOIN sessions s ON s.id = t.session_id \
         JOIN users u ON u.id = s.user_id "
    };
}

/// Retired refresh tokens kept per session, besides the live one: enough
/// for a burst of tabs adopting successors inside the grace window. Older
/// ones are pruned at each rotation; a pruned token replayed later is still
/// recognised from its descendants (see `AuthService::refresh`).
pub const KEPT_RETIRED_GENERATIONS: i64 = 8;

/// The window over which a session's rotations are counted.
pub const ROTATION_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// What a rotation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotated {
    Done,
    /// Another request rotated the token first.
    Lost,
    /// The session rotated too often in this window; nothing changed.
    OverBudget {
        until: Timestamp,
    },
}

/// Which sessions a logout ends.
#[derive(Clone, Copy, Debug)]
pub enum Revocation {
    One(SessionId),
    /// Every live session of the user, except `keep`.
    OfUser {
        user_id: UserId,
        keep: Option<SessionId>,
    },
}

/// One step of a refresh-token chain.
pub struct Rotation<'a> {
    pub session_id: SessionId,
    pub old_hash: &'a [u8],
    pub new_hash: &'a [u8],
    pub new_generation: i64,
    /// Rotations a session may make per [`ROTATION_WINDOW`].
    pub max_per_window: u32,
    pub now: Timestamp,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// The `exp` (Unix seconds) of the access token issued with it.
    pub access_expires_at: i64,
}

/// A password change: new hash, other sessions ended, and the current
/// session's refresh token replaced.
pub struct PasswordChange<'a> {
    pub user_id: UserId,
    pub current_session: SessionId,
    pub new_password_hash: &'a str,
    pub new_token_hash: &'a [u8],
    pub now: Timestamp,
    /// The `exp` (Unix seconds) of the access token issued with it.
    pub access_expires_at: i64,
    /// The "your password was changed" notice, queued with the change.
    pub notice: &'a super::NewMail,
}

impl Store {
    /// Creates a session with its first refresh token, atomically, if the
    /// user's password hash is still `password_hash`; `false` when it is not
    /// (a password change committed since it was checked). The first
    /// statement reads the user row under a share lock on PostgreSQL, so a
    /// concurrent change either waits for this session (and then revokes it)
    /// or has committed (and this finds no row); SQLite's write transaction
    /// serialises the same way.
    pub async fn create_session(&self, session: &NewSession<'_>) -> StoreResult<bool> {
        macro_rules! insert_if_current {
            ($lock:literal) => {
                concat!(
                    "INSERT INTO sessions (id, user_id, rotation_key, created_at, last_used_at, ",
                    "authenticated_at, expires_at, user_agent, ip, access_expires_at) ",
                    "SELECT $1, id, $3, $4, $4, $4, $5, $6, $7, $9 FROM users ",
                    "WHERE id = $2 AND password_hash = $8 AND disabled_at IS NULL",
                    $lock
                )
            };
        }
        let insert = match self.engine() {
            super::Engine::Postgres => insert_if_current!(" FOR SHARE"),
            super::Engine::Sqlite => insert_if_current!(""),
        };
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let created = sqlx::query(insert)
                .bind(session.id)
                .bind(session.user_id)
                .bind(session.rotation_key)
                .bind(session.now)
                .bind(session.expires_at)
                .bind(session.user_agent)
                .bind(session.ip)
                .bind(session.password_hash)
                .bind(session.access_expires_at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if created == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, session_id, generation, issued_at) \
                 VALUES ($1, $2, 0, $3)",
            )
            .bind(session.first_token_hash)
            .bind(session.id)
            .bind(session.now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await.map(|()| true)
        }.await)
        .context("Failed to create a session")
    }

    /// The per-request revocation check: the session named by an access token,
    /// if it still belongs to that user, is not revoked and has not expired.
    /// One primary-key lookup joined to the user row the caller needs anyway,
    /// and the account's second factors (two more primary-key lookups). On a
    /// SQLite file it runs on the calling thread ([`super::inline_reads`]).
    pub async fn active_session(
        &self,
        session_id: SessionId,
        user_id: UserId,
        now: Timestamp,
    ) -> StoreResult<Option<ActiveSession>> {
        if let Some(inline) = &self.inline_reads
            && let Some(found) = inline.active_session(session_id, user_id, now)
        {
            return Ok(found);
        }
        on_pool!(self, pool => sqlx::query_as(ACTIVE_SESSION)
        .bind(session_id)
        .bind(user_id)
        .bind(now)
        .fetch_optional(pool)
        .await)
        .context("Failed to check a session")
    }

    pub async fn find_refresh_token(&self, hash: &[u8]) -> StoreResult<Option<RefreshTokenRecord>> {
        on_pool!(self, pool => sqlx::query_as(concat!(refresh_token_select!(), "WHERE t.token_hash = $1"))
        .bind(hash)
        .fetch_optional(pool)
        .await)
        .context("Failed to look up a refresh token")
    }

    /// The oldest refresh token still kept for `session`, with its hash: the
    /// anchor a pruned token's descendants are checked against.
    pub async fn oldest_refresh_token(
        &self,
        session: SessionId,
    ) -> StoreResult<Option<(RefreshTokenRecord, Vec<u8>)>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            record: RefreshTokenRecord,
            token_hash: Vec<u8>,
        }
        on_pool!(self, pool => sqlx::query_as::<_, Row>(concat!(
            refresh_token_select!(),
            "WHERE t.session_id = $1 ORDER BY t.generation LIMIT 1"
        ))
        .bind(session)
        .fetch_optional(pool)
        .await)
        .map(|row| row.map(|row| (row.record, row.token_hash)))
        .context("Failed to look up a session's oldest refresh token")
    }

    /// Retires `old_hash` and records `new_hash` as its successor, if and only
    /// if `old_hash` is still live, its session not revoked, and the session
    /// has rotation budget left in the current window. Retired tokens more
    /// than [`KEPT_RETIRED_GENERATIONS`] behind are deleted in the same
    /// transaction, so a session holds a bounded number of rows however often
    /// it refreshes.
    ///
    /// The retiring `UPDATE … WHERE retired_at IS NULL` is the first statement:
    /// on PostgreSQL concurrent callers queue on its row lock and re-check the
    /// condition; on SQLite it takes the write lock. Either way exactly one
    /// caller wins, on any number of instances.
    pub async fn rotate_refresh_token(&self, rotation: &Rotation<'_>) -> StoreResult<Rotated> {
        let window_before = rotation.now.minus(ROTATION_WINDOW);
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let retired = sqlx::query(
                "UPDATE refresh_tokens SET retired_at = $2 \
                 WHERE token_hash = $1 AND retired_at IS NULL \
                 AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = $3 AND s.revoked_at IS NULL)",
            )
            .bind(rotation.old_hash)
            .bind(rotation.now)
            .bind(rotation.session_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if retired != 1 {
                tx.rollback().await?;
                return Ok(Rotated::Lost);
            }
            // Counts this rotation in the session's window, or refuses when
            // the window's budget is spent. The right-hand sides all see the
            // row as it was.
            let counted = sqlx::query(
                "UPDATE sessions SET \
                 rotations_in_window = CASE WHEN rotation_window_start IS NULL \
                   OR rotation_window_start <= $2 THEN 1 ELSE rotations_in_window + 1 END, \
                 rotation_window_start = CASE WHEN rotation_window_start IS NULL \
                   OR rotation_window_start <= $2 THEN $3 ELSE rotation_window_start END, \
                 last_used_at = $3, ip = COALESCE($4, ip), user_agent = COALESCE($5, user_agent), \
                 access_expires_at = $7 \
                 WHERE id = $1 AND (rotation_window_start IS NULL OR rotation_window_start <= $2 \
                   OR rotations_in_window < $6)",
            )
            .bind(rotation.session_id)
            .bind(window_before)
            .bind(rotation.now)
            .bind(rotation.ip)
            .bind(rotation.user_agent)
            .bind(i64::from(rotation.max_per_window))
            .bind(rotation.access_expires_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if counted != 1 {
                let window_start: Option<Timestamp> = sqlx::query_scalar(
                    "SELECT rotation_window_start FROM sessions WHERE id = $1",
                )
                .bind(rotation.session_id)
                .fetch_one(&mut *tx)
                .await?;
                tx.rollback().await?;
                let until = window_start.unwrap_or(rotation.now).plus(ROTATION_WINDOW);
                return Ok(Rotated::OverBudget { until });
            }
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, session_id, generation, issued_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(rotation.new_hash)
            .bind(rotation.session_id)
            .bind(rotation.new_generation)
            .bind(rotation.now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM refresh_tokens WHERE session_id = $1 AND generation < $2")
                .bind(rotation.session_id)
                .bind(rotation.new_generation - KEPT_RETIRED_GENERATIONS)
                .execute(&mut *tx)
                .await?;
            tx.commit().await.map(|()| Rotated::Done)
        }.await)
        .context("Failed to rotate a refresh token")
    }

    /// Ends one session. `Ok(false)` if it was already ended or never existed.
    pub async fn revoke_session(
        &self,
        id: SessionId,
        reason: RevokeReason,
        now: Timestamp,
    ) -> StoreResult<bool> {
        on_writer!(self, pool => sqlx::query(REVOKE_ONE)
        .bind(id)
        .bind(now)
        .bind(reason.as_str())
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))
        .map(|rows| rows == 1)
        .context("Failed to revoke a session")
    }

    /// Revokes a session whose retired refresh token was replayed, and, only
    /// if this call ended it, records `event` and queues the owner's
    /// `notice`, in the same commit. Returns whether it ended the session.
    pub async fn revoke_for_reuse(
        &self,
        id: SessionId,
        now: Timestamp,
        event: &NewEvent<'_>,
        notice: &super::NewMail,
    ) -> StoreResult<bool> {
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let ended = sqlx::query(REVOKE_ONE)
                .bind(id)
                .bind(now)
                .bind(RevokeReason::RefreshTokenReuse.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if ended {
                super::events::bind_event(sqlx::query(super::events::INSERT_EVENT), event)
                    .execute(&mut *tx)
                    .await?;
                super::mail::insert_mail!(tx, notice, now).await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(ended)
        }.await)
        .context("Failed to revoke a replayed session")
    }

    /// Ends one session of `user_id`, and only of that user: someone else's
    /// session id is indistinguishable from an unknown one.
    pub async fn revoke_session_of_user(
        &self,
        user_id: UserId,
        id: SessionId,
        reason: RevokeReason,
        now: Timestamp,
    ) -> StoreResult<bool> {
        on_writer!(self, pool => sqlx::query(
            "UPDATE sessions SET revoked_at = $3, revoked_reason = $4 \
             WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3",
        )
        .bind(id)
        .bind(user_id)
        .bind(now)
        .bind(reason.as_str())
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))
        .map(|rows| rows == 1)
        .context("Failed to revoke a session of a user")
    }

    /// Ends every live session of `user_id` except `keep`; returns how many.
    pub async fn revoke_user_sessions(
        &self,
        user_id: UserId,
        keep: Option<SessionId>,
        reason: RevokeReason,
        now: Timestamp,
    ) -> StoreResult<u64> {
        // The nil UUID is never a session id, so it stands for "keep none".
        let keep = keep.unwrap_or(SessionId(Uuid::nil()));
        on_writer!(self, pool => sqlx::query(REVOKE_OF_USER)
        .bind(user_id)
        .bind(keep)
        .bind(now)
        .bind(reason.as_str())
        .execute(pool)
        .await
        .map(|done| done.rows_affected()))
        .context("Failed to revoke the sessions of a user")
    }

    /// Ends sessions and writes `event` in one transaction: a logout and its
    /// audit row are one commit (one fsync on SQLite, which keeps
    /// `synchronous=FULL`), and neither exists without the other. The event
    /// is written when a session was ended, or always with `record_always`
    /// (scoped logouts, which are worth recording even with nothing left to
    /// end). Returns how many sessions were ended. On SQLite, ending one
    /// session is committed together with the other logouts waiting for the
    /// writer (see [`super::group_commit`]), with the same outcome.
    pub async fn revoke_recorded(
        &self,
        revocation: Revocation,
        reason: RevokeReason,
        now: Timestamp,
        event: &NewEvent<'_>,
        record_always: bool,
    ) -> StoreResult<u64> {
        if let (Revocation::One(session_id), Some(group)) = (revocation, &self.group_commit) {
            let one = super::group_commit::OneRevocation {
                session_id,
                reason,
                now,
                event: event.into(),
                record_always,
            };
            return group.revoke(one).await.context("Failed to end sessions");
        }
        // The nil UUID is never a session id, so it stands for "keep none".
        let nil = SessionId(Uuid::nil());
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            let ended = match revocation {
                Revocation::One(id) => sqlx::query(REVOKE_ONE)
                    .bind(id)
                    .bind(now)
                    .bind(reason.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected(),
                Revocation::OfUser { user_id, keep } => sqlx::query(REVOKE_OF_USER)
                    .bind(user_id)
                    .bind(keep.unwrap_or(nil))
                    .bind(now)
                    .bind(reason.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected(),
            };
            if ended > 0 || record_always {
                super::events::bind_event(sqlx::query(super::events::INSERT_EVENT), event)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(ended)
        }.await)
        .context("Failed to end sessions")
    }

    /// The user's live sessions, most recently used first.
    pub async fn list_active_sessions(
        &self,
        user_id: UserId,
        now: Timestamp,
    ) -> StoreResult<Vec<SessionRecord>> {
        on_pool!(self, pool => sqlx::query_as(
            "SELECT id, created_at, last_used_at, user_agent, ip FROM sessions \
             WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
             ORDER BY last_used_at DESC, created_at DESC",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(pool)
        .await)
        .context("Failed to list sessions")
    }

    /// The user agents of the user's sessions other than `except`, ended ones
    /// included for as long as they are kept, newest first (at most 200):
    /// the devices this account has been used on.
    pub async fn other_user_agents(
        &self,
        user_id: UserId,
        except: SessionId,
    ) -> StoreResult<Vec<Option<String>>> {
        on_pool!(self, pool => sqlx::query_scalar(
            "SELECT user_agent FROM sessions WHERE user_id = $1 AND id <> $2 \
             ORDER BY created_at DESC LIMIT 200",
        )
        .bind(user_id)
        .bind(except)
        .fetch_all(pool)
        .await)
        .context("Failed to list a user's devices")
    }

    /// Records that an access token expiring at `exp` (Unix seconds) is
    /// about to be issued for the session, unless a later one was: what a
    /// `session.revoked` event reports as `access_token_exp`.
    pub async fn extend_access(&self, id: SessionId, exp: i64) -> StoreResult<()> {
        on_writer!(self, pool => sqlx::query(
            "UPDATE sessions SET access_expires_at = $2 \
             WHERE id = $1 AND (access_expires_at IS NULL OR access_expires_at < $2)",
        )
        .bind(id)
        .bind(exp)
        .execute(pool)
        .await
        .map(drop))
        .context("Failed to record an access token's expiry")
    }

    /// Records that the password was just proven on this device.
    pub async fn mark_reauthenticated(&self, id: SessionId, now: Timestamp) -> StoreResult<()> {
        on_writer!(self, pool => sqlx::query("UPDATE sessions SET authenticated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))
        .map(drop)
        .context("Failed to record a re-authentication")
    }

    /// Applies a password change in one transaction and returns the current
    /// session's expiry. `Ok(None)` if that session was revoked meanwhile
    /// (then nothing changes).
    pub async fn change_password(
        &self,
        change: &PasswordChange<'_>,
    ) -> StoreResult<Option<Timestamp>> {
        on_writer!(self, pool => async {
            let mut tx = pool.begin().await?;
            // First statement writes, and fails the whole change if the
            // session asking for it has just been ended.
            let expires_at: Option<Timestamp> = sqlx::query_scalar(
                "UPDATE sessions SET authenticated_at = $3, last_used_at = $3, access_expires_at = $4 \
                 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING expires_at",
            )
            .bind(change.current_session)
            .bind(change.user_id)
            .bind(change.now)
            .bind(change.access_expires_at)
            .fetch_optional(&mut *tx)
            .await?;
            if expires_at.is_none() {
                tx.rollback().await?;
                return Ok(None);
            }
            sqlx::query(super::users::SET_PASSWORD)
                .bind(change.user_id)
                .bind(change.new_password_hash)
                .bind(change.now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE sessions SET revoked_at = $3, revoked_reason = $4 \
                 WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL",
            )
            .bind(change.user_id)
            .bind(change.current_session)
            .bind(change.now)
            .bind(RevokeReason::PasswordChanged.as_str())
            .execute(&mut *tx)
            .await?;
            sqlx::query(super::email_tokens::SPEND_RESET_LINKS)
                .bind(change.user_id)
                .bind(change.now)
                .execute(&mut *tx)
                .await?;
            super::mail::insert_mail!(tx, change.notice, change.now).await?;
            sqlx::query(
                "UPDATE refresh_tokens SET retired_at = $2 WHERE session_id = $1 AND retired_at IS NULL",
            )
            .bind(change.current_session)
            .bind(change.now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, session_id, generation, issued_at) \
                 SELECT $1, $2, COALESCE(MAX(generation), -1) + 1, $3 FROM refresh_tokens WHERE session_id = $2",
            )
            .bind(change.new_token_hash)
            .bind(change.current_session)
            .bind(change.now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await.map(|()| expires_at)
        }.await)
        .context("Failed to change a password")
    }

    /// Number of live refresh tokens of a session (0 or 1 unless something is
    /// wrong); for tests of the rotation invariant.
    pub async fn live_refresh_tokens(&self, session_id: SessionId) -> StoreResult<i64> {
        on_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM refresh_tokens WHERE session_id = $1 AND retired_at IS NULL",
        )
        .bind(session_id)
        .fetch_one(pool)
        .await)
        .context("Failed to count live refresh tokens")
    }

    /// Whether a session is revoked, with its reason; `None` if unknown.
    pub async fn session_revocation(
        &self,
        id: SessionId,
    ) -> StoreResult<Option<(Option<Timestamp>, Option<String>)>> {
        on_pool!(self, pool => sqlx::query_as(
            "SELECT revoked_at, revoked_reason FROM sessions WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await)
        .context("Failed to read a session's revocation")
    }
}
