//! Throttling of guessable secrets: exponential backoff per key (an account,
//! a client IP), stored in the database so every instance shares it. An
//! attempt is counted atomically *before* the secret is checked, so a burst
//! of parallel guesses gets no more checks than the limit allows.
//!
//! Keys are plain strings, so any future secret a person types (a TOTP code,
//! a recovery code) gets keys of its own through the same [`Throttle`].

use std::time::Duration;

use crate::server::{
    client::ClientInfo,
    config::ThrottleSettings,
    db::{LinkPurpose, Reserved, Store, UserId},
    error::AuthError,
    time::Timestamp,
};

/// One counter and the failures it allows before backoff starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ThrottleKey {
    pub key: String,
    pub limit: u32,
    /// The counter is about one account (its lock is shown to its owner).
    pub of_account: bool,
    /// The counter guards a password (sign-in, re-authentication): its
    /// locks are reported to other services as `login.throttled`.
    pub guards_password: bool,
}

/// The account counters' prefix (sign-in and re-authentication).
pub(crate) const ACCOUNT_KEY_PREFIX: &str = "account:";

/// What a granted reservation did: the keys it locked (the attempt that
/// reaches a key's limit proceeds; the ones after it wait).
#[derive(Debug, Default)]
#[must_use = "a lock is audited once its attempt stands"]
pub(crate) struct Reservation {
    pub locked: Vec<Lock>,
}

/// A key that an attempt locked, the attempts counted against it, and when
/// the lock ends.
#[derive(Debug)]
pub(crate) struct Lock {
    pub key: String,
    pub attempts: i64,
    pub of_account: bool,
    pub guards_password: bool,
    pub until: Timestamp,
}

impl Lock {
    /// The key's kind (its prefix: `account`, `device`, `backstop`, `ip`)
    /// and, for a network's key, the network, when the lock guards a
    /// password; `None` for the other counters (mail, sign-up, admin keys).
    pub(crate) fn password_guard(&self) -> Option<(&str, Option<&str>)> {
        if !self.guards_password {
            return None;
        }
        let (kind, rest) = self.key.split_once(':')?;
        Some((kind, (kind == "ip").then_some(rest)))
    }
}

pub(crate) struct Throttle {
    store: Store,
    settings: ThrottleSettings,
}

impl Throttle {
    pub(crate) fn new(store: Store, settings: ThrottleSettings) -> Throttle {
        Throttle { store, settings }
    }

    /// The counters a password check counts against, following OWASP's
    /// device-cookie pattern: a browser that proves (by its device cookie)
    /// that it signed in to this account before counts on its own key, so a
    /// stranger's guesses, which lock the account's key for every unknown
    /// device, do not lock its owner out. Every check also counts on a much
    /// higher account-wide backstop. Shared by sign-in and
    /// re-authentication, so a stolen session cannot be used to guess the
    /// password either.
    pub(crate) fn password_keys(&self, account: &str, device: Option<String>) -> Vec<ThrottleKey> {
        let first = match device {
            Some(device) => ThrottleKey {
                key: format!("device:{device}"),
                limit: self.settings.account_max_failures,
                of_account: true,
                guards_password: true,
            },
            None => ThrottleKey {
                key: format!("{ACCOUNT_KEY_PREFIX}{account}"),
                limit: self.settings.account_max_failures,
                of_account: true,
                guards_password: true,
            },
        };
        vec![
            first,
            ThrottleKey {
                key: format!("backstop:{account}"),
                limit: self.settings.account_backstop_failures,
                of_account: true,
                guards_password: true,
            },
        ]
    }

    /// A sign-in's counters: [`password_keys`](Self::password_keys), and the
    /// client's network when known (see [`ClientInfo::network`]).
    pub(crate) fn login_keys(
        &self,
        account: &str,
        device: Option<String>,
        client: &ClientInfo,
    ) -> Vec<ThrottleKey> {
        let mut keys = self.password_keys(account, device);
        if let Some(network) = client.network() {
            keys.push(ThrottleKey {
                key: format!("ip:{network}"),
                limit: self.settings.ip_max_failures,
                of_account: false,
                guards_password: true,
            });
        }
        keys
    }

    /// The counter of second-factor codes tried for one account (its second
    /// sign-in step, and the actions that ask for a code), on the account
    /// limit.
    pub(crate) fn code_key(&self, user_id: UserId) -> ThrottleKey {
        ThrottleKey {
            key: format!("mfa:{user_id}"),
            limit: self.settings.account_max_failures,
            of_account: true,
            guards_password: false,
        }
    }

    /// The counter of passkey sign-ins begun from the client's network and
    /// not (yet) finished: each start stores a ceremony, so an anonymous
    /// client may not make them without bound. A finished sign-in gives its
    /// attempt back, so only abandoned or refused ones count, on the
    /// sign-in limit for a network.
    pub(crate) fn passkey_keys(&self, client: &ClientInfo) -> Vec<ThrottleKey> {
        self.network_key("passkey-ip", client)
    }

    /// The counters of a request that mails a link of `purpose` (a reset,
    /// a verification, an email change): the address it goes to and the
    /// client's network, with a budget per purpose. Every request counts,
    /// whether an account exists or not, so the limit says nothing about that.
    pub(crate) fn mail_keys(
        &self,
        purpose: LinkPurpose,
        email_normalized: &str,
        client: &ClientInfo,
    ) -> Vec<ThrottleKey> {
        let (address, network) = match purpose {
            LinkPurpose::PasswordReset => ("mail-email", "mail-ip"),
            LinkPurpose::VerifyEmail => ("verify-email", "verify-ip"),
            LinkPurpose::ChangeEmail => ("change-email", "change-ip"),
        };
        address_and_network(
            (address, self.settings.recovery_email_max_requests),
            (network, self.settings.recovery_ip_max_requests),
            email_normalized,
            client,
        )
    }

    /// The counter of an admin API request: failed keys per client
    /// network, on the sign-in limit for a network.
    pub(crate) fn admin_key_keys(&self, client: &ClientInfo) -> Vec<ThrottleKey> {
        self.network_key("admin-ip", client)
    }

    /// One counter for the client's network (none when it is unknown), on
    /// the sign-in limit for a network, belonging to no account.
    fn network_key(&self, prefix: &str, client: &ClientInfo) -> Vec<ThrottleKey> {
        client
            .network()
            .map(|network| ThrottleKey {
                key: format!("{prefix}:{network}"),
                limit: self.settings.ip_max_failures,
                of_account: false,
                guards_password: false,
            })
            .into_iter()
            .collect()
    }

    /// A registration's counters: the client's network and the address
    /// being registered. Every registration counts, successful or not.
    pub(crate) fn registration_keys(
        &self,
        email_normalized: &str,
        client: &ClientInfo,
    ) -> Vec<ThrottleKey> {
        address_and_network(
            ("register-email", self.settings.register_email_max_attempts),
            ("register-ip", self.settings.register_ip_max_attempts),
            email_normalized,
            client,
        )
    }

    /// Reserves one attempt against every key, before the secret is
    /// checked (see `Store::reserve_attempt`): `Err(Throttled)` while any key
    /// is locked, with nothing left counted. A granted attempt stands as a
    /// failure unless it is [`release`](Self::release)d or
    /// [`clear`](Self::clear)ed.
    ///
    /// Refused attempts are not audited one by one (an attacker would choose
    /// how many rows to write): the [`Reservation`] names the keys this
    /// attempt locked, and the caller records one event per lock once the
    /// attempt's outcome makes it stand.
    pub(crate) async fn reserve(
        &self,
        keys: &[ThrottleKey],
        now: Timestamp,
    ) -> Result<Reservation, AuthError> {
        let reset_before = now.minus(self.settings.failure_window);
        let mut locked = Vec::new();
        for (index, key) in keys.iter().enumerate() {
            let reserved = self
                .store
                .reserve_attempt(&key.key, now, reset_before, |count| {
                    backoff(count, key.limit, &self.settings)
                })
                .await;
            let until = match reserved {
                Ok(Reserved::Granted(count)) => {
                    if let Some(delay) = backoff(count, key.limit, &self.settings) {
                        locked.push(Lock {
                            key: key.key.clone(),
                            attempts: count,
                            of_account: key.of_account,
                            guards_password: key.guards_password,
                            until: now.plus(delay),
                        });
                    }
                    continue;
                }
                Ok(Reserved::Locked(until)) => until,
                Err(error) => {
                    self.release(&keys[..index]).await;
                    return Err(error.into());
                }
            };
            self.release(&keys[..index]).await;
            return Err(AuthError::Throttled {
                retry_after: now.until(until),
            });
        }
        Ok(Reservation { locked })
    }

    /// [`reserve`](Self::reserve) for a request that sends mail, whose
    /// answer is the same when it is held back: `None` when a key is locked.
    pub(crate) async fn reserve_send(
        &self,
        keys: &[ThrottleKey],
        now: Timestamp,
    ) -> Result<Option<Reservation>, AuthError> {
        match self.reserve(keys, now).await {
            Ok(reservation) => Ok(Some(reservation)),
            Err(AuthError::Throttled { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// Forgets `key`'s failures (the account's, after a success).
    pub(crate) async fn clear(&self, key: &ThrottleKey) -> Result<(), AuthError> {
        Ok(self.store.clear_login_failures(&key.key).await?)
    }

    /// Gives reserved attempts back: the secret was right, or was never
    /// checked. Best effort: a failure here only over-counts.
    pub(crate) async fn release(&self, keys: &[ThrottleKey]) {
        for key in keys {
            if let Err(error) = self.store.release_attempt(&key.key, key.limit).await {
                tracing::warn!(error = ?error, "failed to give back a login attempt");
            }
        }
    }
}

/// A counter per address and, when the client's network is known, one per
/// network: `(prefix, limit)` each. Neither belongs to an account.
fn address_and_network(
    address: (&str, u32),
    network: (&str, u32),
    email_normalized: &str,
    client: &ClientInfo,
) -> Vec<ThrottleKey> {
    let mut keys = vec![ThrottleKey {
        key: format!("{}:{email_normalized}", address.0),
        limit: address.1,
        of_account: false,
        guards_password: false,
    }];
    if let Some(net) = client.network() {
        keys.push(ThrottleKey {
            key: format!("{}:{net}", network.0),
            limit: network.1,
            of_account: false,
            guards_password: false,
        });
    }
    keys
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
            account_backstop_failures: 100,
            register_ip_max_attempts: 20,
            register_email_max_attempts: 3,
            recovery_email_max_requests: 3,
            recovery_ip_max_requests: 20,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            failure_window: Duration::from_secs(3600),
        }
    }

    #[tokio::test]
    async fn only_the_locks_that_guard_a_password_are_reported() {
        // The key builders live on a throttle, which needs a store; this one
        // is never connected to.
        let dir = tempfile::tempdir().unwrap();
        let throttle = Throttle::new(
            Store::connect_lazy(
                &crate::server::config::DatabaseSettings::for_url(
                    format!("sqlite://{}/unused.db", dir.path().display()),
                    1,
                    Duration::from_secs(1),
                    Duration::from_secs(1),
                )
                .unwrap(),
            )
            .unwrap(),
            settings(),
        );
        let client = ClientInfo {
            ip: Some("203.0.113.7".into()),
            ..ClientInfo::default()
        };
        let lock = |key: &ThrottleKey| Lock {
            key: key.key.clone(),
            attempts: 5,
            of_account: key.of_account,
            guards_password: key.guards_password,
            until: Timestamp::from_millis(0),
        };
        let reported = |keys: Vec<ThrottleKey>| -> Vec<(String, Option<String>)> {
            keys.iter()
                .filter_map(|key| {
                    let lock = lock(key);
                    lock.password_guard()
                        .map(|(kind, network)| (kind.to_string(), network.map(str::to_string)))
                })
                .collect()
        };
        assert_eq!(
            reported(throttle.login_keys("a@b.example", None, &client)),
            [
                ("account".to_string(), None),
                ("backstop".to_string(), None),
                ("ip".to_string(), Some("203.0.113.7".to_string())),
            ]
        );
        assert_eq!(
            reported(throttle.password_keys("a@b.example", Some("xyz".into()))),
            [("device".to_string(), None), ("backstop".to_string(), None)]
        );
        for other in [
            throttle.registration_keys("a@b.example", &client),
            throttle.mail_keys(LinkPurpose::PasswordReset, "a@b.example", &client),
            throttle.admin_key_keys(&client),
        ] {
            assert!(!other.is_empty());
            assert_eq!(reported(other), [], "not a password's counter");
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
