//! A real SMTP server for the tests: `tests/support/smtp-sink.mjs` (npm
//! `smtp-server`, pinned), started per test on a free port. The server under
//! test delivers to it over SMTP; the tests read what arrived.

use std::{path::PathBuf, process::Stdio, time::Duration};

use serde::Deserialize;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

#[derive(Clone, Debug, Deserialize)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub content_type: String,
}

impl Mail {
    /// The first link in the plain-text part that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> String {
        let start = self
            .text
            .find(prefix)
            .unwrap_or_else(|| panic!("no {prefix} link in {:?}", self.text));
        self.text[start..]
            .split_whitespace()
            .next()
            .expect("a link")
            .to_string()
    }

    /// The `token` of the first link starting with `prefix`.
    pub fn token(&self, prefix: &str) -> String {
        let link = self.link(prefix);
        let url = url::Url::parse(&link).expect("a valid link");
        url.query_pairs()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
            .expect("a token in the link")
    }
}

pub struct Mailbox {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Mailbox {
    pub async fn start() -> Mailbox {
        Mailbox::start_on(0).await
    }

    /// On a given port: to bring a server back where a test had one stop.
    pub async fn start_on(port: u16) -> Mailbox {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let script: PathBuf = [
            env!("CARGO_MANIFEST_DIR"),
            "tests",
            "support",
            "smtp-sink.mjs",
        ]
        .iter()
        .collect();
        let mut child = Command::new("node")
            .arg(script)
            .arg(dir.path())
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs the SMTP sink (npm ci installs smtp-server)");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the SMTP sink starts within 20 s")
            .expect("its output is readable")
            .expect("it prints its port");
        let port = line
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected SMTP sink output: {line}"));
        Mailbox { child, dir, port }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn all(&self) -> Vec<Mail> {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .expect("the mailbox directory")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| {
                serde_json::from_slice(&std::fs::read(p).expect("a message file"))
                    .expect("a message record")
            })
            .collect()
    }

    /// Messages to `address`, oldest first.
    pub fn to(&self, address: &str) -> Vec<Mail> {
        self.all()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(address)))
            .collect()
    }

    /// Waits (up to 30 s) until `address` has received `count` messages
    /// whose subject contains `subject`, and returns the newest.
    pub async fn wait_for_nth(&self, address: &str, subject: &str, count: usize) -> Mail {
        for _ in 0..300 {
            let found: Vec<Mail> = self
                .to(address)
                .into_iter()
                .filter(|m| m.subject.contains(subject))
                .collect();
            if found.len() >= count {
                return found.last().cloned().expect("at least one");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no {count}th {subject:?} mail to {address} within 30 s; got {:?}",
            self.to(address)
                .iter()
                .map(|m| &m.subject)
                .collect::<Vec<_>>()
        );
    }

    pub async fn wait_for(&self, address: &str, subject: &str) -> Mail {
        self.wait_for_nth(address, subject, 1).await
    }

    /// Stops the server (an outage); the port becomes free.
    pub async fn stop(mut self) -> u16 {
        let _ = self.child.kill().await;
        self.port
    }
}
