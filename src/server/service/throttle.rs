//! Throttling of guessable secrets: exponential backoff per key (an account,
//! a client IP), stored in the database so every instance shares it.
//!
//! Keys are plain strings, so any future secret a person types (a TOTP code,
//! a recovery code) gets keys of its own through the same [`Throttle`].

use std::time::Duration;

use crate::server::{
    client::ClientInfo, config::ThrottleSettings, db::Store, error::AuthError, time::Timestamp,
};

/// One counter and the failures it allows before backoff starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ThrottleKey {
    pub key: String,
    pub limit: u32,
}

pub(crate) struct Throttle {
    store: Store,
    settings: ThrottleSettings,
}

impl Throttle {
    pub(crate) fn new(store: Store, settings: ThrottleSettings) -> Throttle {
        Throttle { store, settings }
    }

    /// The account's counter: shared by sign-in and re-authentication, so a
    /// stolen session cannot be used to guess the password either.
    pub(crate) fn account(&self, email_normalized: &str) -> ThrottleKey {
        ThrottleKey {
            key: format!("account:{email_normalized}"),
            limit: self.settings.account_max_failures,
        }
    }

    /// A sign-in's counters: the account, and the client's IP when known.
    pub(crate) fn login_keys(
        &self,
        email_normalized: &str,
        client: &ClientInfo,
    ) -> Vec<ThrottleKey> {
        let mut keys = vec![self.account(email_normalized)];
        if let Some(ip) = client.ip() {
            keys.push(ThrottleKey {
                key: format!("ip:{ip}"),
                limit: self.settings.ip_max_failures,
            });
        }
        keys
    }

    /// `Err(Throttled)` while any of `keys` is locked.
    pub(crate) async fn check(
        &self,
        keys: &[ThrottleKey],
        now: Timestamp,
    ) -> Result<(), AuthError> {
        let names: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
        match self.store.throttled_until(&names, now).await? {
            Some(until) => Err(AuthError::Throttled {
                retry_after: now.until(until),
            }),
            None => Ok(()),
        }
    }

    /// Counts a failure against each key and locks those past their limit.
    pub(crate) async fn record_failures(
        &self,
        keys: &[ThrottleKey],
        now: Timestamp,
    ) -> Result<(), AuthError> {
        let reset_before = now.minus(self.settings.failure_window);
        for key in keys {
            let failures = self
                .store
                .record_login_failure(&key.key, now, reset_before)
                .await?;
            if let Some(delay) = backoff(failures, key.limit, &self.settings) {
                self.store.lock_login(&key.key, now.plus(delay)).await?;
            }
        }
        Ok(())
    }

    /// Forgets `key`'s failures (after a success).
    pub(crate) async fn clear(&self, key: &ThrottleKey) -> Result<(), AuthError> {
        Ok(self.store.clear_login_failures(&key.key).await?)
    }
}

/// How long a key with `failures` is locked: nothing below `limit`, then
/// `base_delay × 2^(failures − limit)`, never more than `max_delay`.
pub(crate) fn backoff(failures: i64, limit: u32, settings: &ThrottleSettings) -> Option<Duration> {
    let excess = failures - i64::from(limit);
    if excess < 0 {
        return None;
    }
    let factor = 2u32.saturating_pow(u32::try_from(excess).unwrap_or(u32::MAX).min(31));
    Some(
        settings
            .base_delay
            .saturating_mul(factor)
            .min(settings.max_delay),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ThrottleSettings {
        ThrottleSettings {
            account_max_failures: 5,
            ip_max_failures: 50,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            failure_window: Duration::from_secs(3600),
        }
    }

    #[test]
    fn failures_below_the_limit_lock_nothing() {
        for failures in [0, 1, 4] {
            assert_eq!(backoff(failures, 5, &settings()), None, "{failures}");
        }
    }

    #[test]
    fn the_lock_doubles_from_the_base_with_each_failure_past_the_limit() {
        let s = settings();
        assert_eq!(backoff(5, 5, &s), Some(Duration::from_secs(1)));
        assert_eq!(backoff(6, 5, &s), Some(Duration::from_secs(2)));
        assert_eq!(backoff(7, 5, &s), Some(Duration::from_secs(4)));
        assert_eq!(backoff(14, 5, &s), Some(Duration::from_secs(512)));
    }

    #[test]
    fn the_lock_is_capped_and_never_overflows() {
        let s = settings();
        assert_eq!(backoff(15, 5, &s), Some(s.max_delay));
        assert_eq!(backoff(1_000, 5, &s), Some(s.max_delay));
        assert_eq!(backoff(i64::MAX, 1, &s), Some(s.max_delay));
        let huge = ThrottleSettings {
            base_delay: Duration::MAX,
            max_delay: Duration::MAX,
            ..s
        };
        assert_eq!(backoff(100, 1, &huge), Some(Duration::MAX));
    }
}
