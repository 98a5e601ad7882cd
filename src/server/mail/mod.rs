//! Outgoing mail: the messages Portcullis sends (password-reset links and
//! security notices), how they are delivered, and the links in them.
//!
//! A message is written to the database outbox in the same transaction as
//! what caused it (`db::mail`), so it exists exactly when that committed.
//! The [`worker`] delivers it afterwards, with retries and backoff, on
//! whichever instance claims it first; a request never waits for SMTP.
//! Without `PORTCULLIS_SMTP_URL` each message is written as an `.eml` file
//! under `<data dir>/outbox/` instead (development, and the two README
//! commands with no mail server). Nothing here logs a link or a body.

pub mod templates;
pub mod worker;

use anyhow::Context;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
};
use secrecy::ExposeSecret;
use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};
use tokio::sync::Notify;

use super::{config::MailSettings, db::OutboxMail};

/// The links mail carries, always built from `PORTCULLIS_PUBLIC_URL` (or
/// the development origin), never from a request's `Host` header.
#[derive(Clone, Debug)]
pub struct Links {
    origin: String,
}

impl Links {
    pub fn new(public_origin: &str) -> Links {
        Links {
            origin: public_origin.trim_end_matches('/').to_string(),
        }
    }

    pub fn reset_password(&self, token: &str) -> String {
        format!("{}/reset-password?token={token}", self.origin)
    }

    pub fn verify_email(&self, token: &str) -> String {
        format!("{}/verify-email?token={token}", self.origin)
    }

    pub fn confirm_email(&self, token: &str) -> String {
        format!("{}/confirm-email?token={token}", self.origin)
    }

    pub fn forgot_password(&self) -> String {
        format!("{}/forgot-password", self.origin)
    }
}

/// Wakes the delivery worker when a message was queued, so it goes out at
/// once instead of at the next poll.
#[derive(Clone, Debug, Default)]
pub struct MailQueue(Arc<Notify>);

impl MailQueue {
    pub fn wake(&self) {
        self.0.notify_one();
    }

    pub(crate) async fn woken(&self) {
        self.0.notified().await;
    }
}

/// Why a delivery failed: worth retrying, or never going to work.
#[derive(Debug)]
pub enum SendError {
    Transient(anyhow::Error),
    Permanent(anyhow::Error),
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Directory(PathBuf),
}

/// Hands messages to the SMTP server, or to the outbox directory.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

/// The longest one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

impl Mailer {
    pub fn new(settings: &MailSettings, data_dir: &Path) -> anyhow::Result<Mailer> {
        let transport = match &settings.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .map_err(|_| anyhow::anyhow!("PORTCULLIS_SMTP_URL is not a valid SMTP URL"))?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build(),
            ),
            None => {
                let dir = data_dir.join("outbox");
                super::files::private_dir(&dir)?;
                Transport::Directory(dir)
            }
        };
        Ok(Mailer {
            transport,
            from: settings.from.clone(),
        })
    }

    /// Where messages go, for the startup log: the SMTP server's host, or
    /// the directory (never the URL: it may hold a password).
    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Smtp(_) => "SMTP (PORTCULLIS_SMTP_URL)".into(),
            Transport::Directory(dir) => format!("the outbox directory {}", dir.display()),
        }
    }

    pub async fn send(&self, mail: &OutboxMail) -> Result<(), SendError> {
        let message = self.message(mail).map_err(SendError::Permanent)?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp.send(message).await.map(drop).map_err(|error| {
                if error.is_permanent() {
                    SendError::Permanent(error.into())
                } else {
                    SendError::Transient(error.into())
                }
            }),
            Transport::Directory(dir) => {
                let path = write_eml(dir, mail.id, &message.formatted())
                    .await
                    .map_err(SendError::Transient)?;
                // The path only: the file holds the link.
                tracing::info!(path = %path.display(), "mail written to the outbox directory");
                Ok(())
            }
        }
    }

    fn message(&self, mail: &OutboxMail) -> anyhow::Result<Message> {
        let to: Mailbox = mail
            .recipient
            .parse()
            .context("The recipient is not a valid address")?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&mail.subject)
            .multipart(MultiPart::alternative_plain_html(
                mail.text_body.clone(),
                mail.html_body.clone(),
            ))
            .context("Failed to build a message")
    }
}

/// Writes a message as `<dir>/<id>.eml`, mode 0600, atomically: a reader
/// never sees half a file.
async fn write_eml(dir: &Path, id: i64, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{id:010}.eml"));
    let partial = dir.join(format!(".{id:010}.eml.partial"));
    let bytes = bytes.to_vec();
    let (from, to) = (partial.clone(), path.clone());
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        use std::{fs::OpenOptions, io::Write, os::unix::fs::OpenOptionsExt};
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&from)
            .with_context(|| format!("Failed to create {}", from.display()))?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("Failed to write {}", from.display()))?;
        std::fs::rename(&from, &to).with_context(|| format!("Failed to move {}", to.display()))
    })
    .await
    .context("The outbox writer stopped")??;
    Ok(path)
}
