//! The delivery worker: claims due messages from the outbox one at a time,
//! hands each to the [`Mailer`], deletes it when delivered and reschedules it
//! with exponential backoff when not. Every instance runs one; the claim is
//! a lease in the database, so a message goes out once even when several
//! instances share it, and one claimed by an instance that died is due
//! again when the lease runs out. Messages still queued at a restart are
//! sent after it.

use std::{sync::Arc, time::Duration};

use super::{MailQueue, Mailer, SendError};
use crate::server::{db::Store, time::Timestamp};

/// How long a claimed message is reserved for the worker that claimed it:
/// longer than one SMTP conversation may take.
const LEASE: Duration = Duration::from_secs(60);
/// How often the outbox is checked without a wake-up (messages queued by
/// another instance, retries that came due).
const POLL: Duration = Duration::from_secs(1);
/// A message not delivered after this many attempts is dropped (with a
/// warning): its link has long expired.
pub const MAX_ATTEMPTS: i32 = 25;

/// The wait before attempt `attempts + 1`: 1 s, 2 s, 4 s… up to `max`.
pub fn backoff(attempts: i32, max: Duration) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    Duration::from_secs(1u64 << exponent).min(max)
}

pub fn spawn(
    store: Store,
    mailer: Arc<Mailer>,
    queue: MailQueue,
    retry_max: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            drain(&store, &mailer, retry_max).await;
            tokio::select! {
                () = queue.woken() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    })
}

/// Delivers every message that is due now.
async fn drain(store: &Store, mailer: &Mailer, retry_max: Duration) {
    loop {
        let mail = match store.claim_mail(Timestamp::now(), LEASE).await {
            Ok(Some(mail)) => mail,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(error = ?error, "cannot read the mail outbox; will retry");
                return;
            }
        };
        let outcome = mailer.send(&mail).await;
        let result = match outcome {
            Ok(()) => store.mail_delivered(mail.id).await,
            Err(SendError::Permanent(error)) => {
                tracing::warn!(mail = mail.id, error = %error, "mail refused for good; dropped");
                store.mail_delivered(mail.id).await
            }
            Err(SendError::Transient(_)) if mail.attempts >= MAX_ATTEMPTS => {
                tracing::warn!(
                    mail = mail.id,
                    attempts = mail.attempts,
                    "mail undeliverable; dropped"
                );
                store.mail_delivered(mail.id).await
            }
            Err(SendError::Transient(error)) => {
                let wait = backoff(mail.attempts, retry_max);
                tracing::warn!(
                    mail = mail.id,
                    attempts = mail.attempts,
                    retry_in = ?wait,
                    error = %error,
                    "mail delivery failed; will retry"
                );
                let reason: String = error.to_string().chars().take(500).collect();
                store
                    .mail_failed(mail.id, Timestamp::now().plus(wait), &reason)
                    .await
            }
        };
        if let Err(error) = result {
            tracing::warn!(mail = mail.id, error = ?error, "cannot update the mail outbox");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_the_maximum() {
        let max = Duration::from_secs(600);
        assert_eq!(backoff(1, max), Duration::from_secs(1));
        assert_eq!(backoff(2, max), Duration::from_secs(2));
        assert_eq!(backoff(5, max), Duration::from_secs(16));
        assert_eq!(backoff(11, max), max);
        assert_eq!(backoff(i32::MAX, max), max);
        assert_eq!(backoff(0, max), Duration::from_secs(1));
    }
}
