//! The audit trail: what happened to an account, for its owner's activity
//! list and for investigations. Best effort by design: a failure to write an
//! event is logged, and the action it describes (often a logout) still
//! completes. Every capability records through [`Audit`].

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use super::{Principal, throttle::Reservation};
use crate::server::{
    client::ClientInfo,
    db::{EventKind, NewEvent, NewLockEvent, SessionId, Store, UserId},
    time::Timestamp,
};

/// Shed password checks are audited at most this often, with their count,
/// so that a storm cannot turn into a storm of audit rows.
const SHED_AUDIT_INTERVAL: Duration = Duration::from_secs(10);

pub(crate) struct Audit {
    store: Store,
    shed: ShedTally,
}

impl Audit {
    pub(crate) fn new(store: Store) -> Audit {
        Audit {
            store,
            shed: ShedTally::default(),
        }
    }

    /// An event about `principal`'s session (or about nobody), now.
    pub(crate) async fn of(
        &self,
        kind: EventKind,
        principal: Option<&Principal>,
        client: &ClientInfo,
        detail: Option<&str>,
    ) {
        self.record(
            kind,
            principal.map(|p| p.user_id),
            principal.map(|p| p.session_id),
            client,
            detail,
            Timestamp::now(),
        )
        .await;
    }

    /// A refused sign-in. The attempted email is kept (it says who was
    /// targeted); the attempted password never is.
    pub(crate) async fn login_failure(
        &self,
        user_id: Option<UserId>,
        client: &ClientInfo,
        reason: &str,
        email_normalized: &str,
        now: Timestamp,
    ) {
        let detail = format!("{reason}: {email_normalized}");
        self.record(
            EventKind::LoginFailed,
            user_id,
            None,
            client,
            Some(&detail),
            now,
        )
        .await;
    }

    /// One event per throttle lock that stands (see `Throttle::reserve`):
    /// the key (an account's address or a client network) and the attempts
    /// that locked it. An account's lock belongs to `user_id`, so its owner
    /// sees it in their activity.
    pub(crate) async fn locks(
        &self,
        reservation: Reservation,
        user_id: Option<UserId>,
        client: &ClientInfo,
        now: Timestamp,
    ) {
        for lock in reservation.locked {
            let owner = user_id.filter(|_| lock.of_account);
            let detail = format!("{} locked after {} attempts", lock.key, lock.attempts);
            let audit = event(
                EventKind::ThrottleLocked,
                owner,
                None,
                client,
                Some(&detail),
                now,
            );
            // A password's lock is also a `login.throttled` event, written
            // with its audit row.
            let recorded = match lock.password_guard() {
                Some((key_kind, network)) => {
                    let report = NewLockEvent {
                        user_id: owner,
                        key_kind,
                        network,
                        locked_until: lock.until,
                    };
                    self.store.record_lock(&audit, &report).await
                }
                None => self.store.record_event(&audit).await,
            };
            if let Err(error) = recorded {
                tracing::error!(error = ?error, "failed to record a throttle lock");
            }
        }
    }

    /// Counts a password check shed under load, and records the count once
    /// per interval (never the password, nor whose it was).
    pub(crate) async fn shed(&self, client: &ClientInfo) {
        let Some(count) = self.shed.count() else {
            return;
        };
        tracing::warn!(count, "password checks shed: the hashing pool is saturated");
        let detail = format!("{count} password checks shed");
        self.record(
            EventKind::LoadShed,
            None,
            None,
            client,
            Some(&detail),
            Timestamp::now(),
        )
        .await;
    }

    /// Writes an audit event. Best effort: a failure is logged, and the action
    /// it describes still completes.
    pub(crate) async fn record(
        &self,
        kind: EventKind,
        user_id: Option<UserId>,
        session_id: Option<SessionId>,
        client: &ClientInfo,
        detail: Option<&str>,
        now: Timestamp,
    ) {
        let event = event(kind, user_id, session_id, client, detail, now);
        if let Err(error) = self.store.record_event(&event).await {
            tracing::error!(kind = kind.as_str(), error = ?error, "failed to record an audit event");
        }
    }
}

/// An event as it is stored, for [`Audit::record`] and for the writes that
/// commit their event in their own transaction (logout).
pub(crate) fn event<'a>(
    kind: EventKind,
    user_id: Option<UserId>,
    session_id: Option<SessionId>,
    client: &'a ClientInfo,
    detail: Option<&'a str>,
    now: Timestamp,
) -> NewEvent<'a> {
    NewEvent {
        kind,
        user_id,
        session_id,
        ip: client.ip(),
        user_agent: client.user_agent(),
        detail,
        now,
    }
}

/// Counts shed password checks between two `load_shed` audit events.
#[derive(Default)]
struct ShedTally {
    pending: AtomicU64,
    last_recorded: Mutex<Option<Instant>>,
}

impl ShedTally {
    /// Counts one; returns the count to record now, if an event is due.
    fn count(&self) -> Option<u64> {
        self.pending.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last_recorded.lock().ok()?;
        let due = last.is_none_or(|at| at.elapsed() >= SHED_AUDIT_INTERVAL);
        if !due {
            return None;
        }
        *last = Some(Instant::now());
        Some(self.pending.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shed_checks_are_recorded_once_per_interval_with_their_count() {
        let tally = ShedTally::default();
        assert_eq!(tally.count(), Some(1), "the first is recorded at once");
        assert_eq!(tally.count(), None);
        assert_eq!(tally.count(), None);
        // Pretend the interval has passed.
        *tally.last_recorded.lock().unwrap() = Instant::now().checked_sub(SHED_AUDIT_INTERVAL);
        assert_eq!(tally.count(), Some(3), "the two held back and this one");
    }
}
