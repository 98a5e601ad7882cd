use super::{StoreContext, StoreResult};

use super::{Store, UserId, UserRecord, on_pool, on_writer};

/// Replaces a user's password (`$1` id, `$2` hash, `$3` now), inside the
/// transaction of a change or a reset that also ends sessions.
pub(super) const SET_PASSWORD: &str =
    "UPDATE users SET password_hash = $2, password_changed_at = $3 WHERE id = $1";

/// Inserts a user (`$1` id, `$2` email, `$3` normalised, `$4` hash, `$5`
/// now); no row when the normalised address is taken.
pub(super) const INSERT_USER: &str = "INSERT INTO users \
     (id, email, email_normalized, password_hash, created_at, password_changed_at) \
     VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (email_normalized) DO NOTHING";

/// The columns of a [`UserRecord`].
const USER_COLUMNS: &str = "id, email, password_hash, \
     email_verified_at IS NOT NULL AS email_verified, disabled_at IS NOT NULL AS disabled";

impl Store {
    /// The user stored under either normalised key (see
    /// `Email::lookup_keys`: today's, and the one older versions wrote).
    pub async fn find_user_by_email(&self, keys: [&str; 2]) -> StoreResult<Option<UserRecord>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users \
             WHERE email_normalized = $1 OR email_normalized = $2 \
             ORDER BY email_normalized = $1 DESC LIMIT 1"
        );
        on_pool!(self, pool => sqlx::query_as(&sql)
        .bind(keys[0])
        .bind(keys[1])
        .fetch_optional(pool)
        .await)
        .context("Failed to look up a user by email")
    }

    pub async fn find_user(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        on_pool!(self, pool => sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await)
        .context("Failed to look up a user by id")
    }

    /// Replaces the stored hash without ending any session: used to upgrade a
    /// hash made with older parameters after a successful login.
    pub async fn upgrade_password_hash(
        &self,
        id: UserId,
        old_hash: &str,
        new_hash: &str,
    ) -> StoreResult<bool> {
        // Conditional on the old hash, so a concurrent password change wins.
        on_writer!(self, pool => sqlx::query(
            "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2",
        )
        .bind(id)
        .bind(old_hash)
        .bind(new_hash)
        .execute(pool)
        .await
        .map(|done| done.rows_affected() == 1))
        .context("Failed to upgrade a password hash")
    }

    /// Deletes a user and, by cascade, their sessions and refresh tokens.
    pub async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
        on_writer!(self, pool => sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))
        .map(|rows| rows == 1)
        .context("Failed to delete a user")
    }

    /// Number of users; for tests and operations.
    pub async fn count_users(&self) -> StoreResult<i64> {
        on_pool!(self, pool => sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(pool)
            .await)
        .context("Failed to count users")
    }
}
