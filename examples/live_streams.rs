//! Live sign-out at scale: many idle event streams on one instance, then
//! the time from a revoke to the `ended` event on every one of them.
//!
//! `live_streams URL PID [STREAMS] [USERS] [SESSIONS_PER_USER]` (defaults
//! 10000, 10, 10) registers USERS accounts on the server at URL, signs each
//! in SESSIONS_PER_USER times, spreads STREAMS streams evenly over those
//! sessions, and waits until every stream says `ready`. It prints the
//! server's resident memory (process PID) before and with the streams open.
//! Then every account signs out everywhere at once, and it prints the
//! delay from that moment to each stream's `ended`: p50, p99 and max. The
//! server must allow STREAMS / USERS streams per account
//! (`PORTCULLIS_LIVE_MAX_STREAMS_PER_USER`) and USERS registrations from one
//! address. Used by `scripts/bench-live`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::{Semaphore, mpsc};

const PASSWORD: &str = "violet kettle anthem 42";

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args.first().expect("URL").trim_end_matches('/').to_string();
    let pid: u32 = args.get(1).expect("PID").parse().expect("a PID");
    let number = |i: usize, default: usize| {
        args.get(i)
            .map_or(default, |v| v.parse().expect("a number"))
    };
    let (streams, users, per_user) = (number(2, 10_000), number(3, 10), number(4, 10));
    portcullis::server::serve::raise_open_file_limit();

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let run = std::process::id();
    let mut sessions = Vec::new();
    let mut accounts = Vec::new();
    for user in 0..users {
        let email = format!("live-bench-{run}-{user}@example.com");
        let registered = client
            .post(format!("{url}/auth/register"))
            .json(&serde_json::json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert!(
            registered.status().is_success(),
            "register: {}",
            registered.status()
        );
        let mut first = None;
        for _ in 0..per_user {
            let login: serde_json::Value = client
                .post(format!("{url}/auth/login"))
                .json(&serde_json::json!({ "email": email, "password": PASSWORD, "token_delivery": "body" }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let access = login["tokens"]["access_token"]
                .as_str()
                .unwrap_or_else(|| panic!("an access token: {login}"))
                .to_string();
            first.get_or_insert_with(|| access.clone());
            sessions.push(access);
        }
        accounts.push(first.unwrap());
    }
    let idle = rss_mib(pid);

    // Streams: a separate client, so that each stream has its own connection
    // and the sign-outs below do not queue behind them.
    let streaming = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let opening = Arc::new(Semaphore::new(256));
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
    let (ended_tx, mut ended_rx) = mpsc::unbounded_channel::<Instant>();
    let started = Instant::now();
    for i in 0..streams {
        let access = sessions[i % sessions.len()].clone();
        let (client, url, opening) = (streaming.clone(), url.clone(), opening.clone());
        let (ready_tx, ended_tx) = (ready_tx.clone(), ended_tx.clone());
        tokio::spawn(async move {
            let mut permit = Some(opening.acquire_owned().await.unwrap());
            let mut response = client
                .get(format!("{url}/auth/events"))
                .bearer_auth(&access)
                .send()
                .await
                .expect("a stream opens");
            assert!(
                response.status().is_success(),
                "stream: {}",
                response.status()
            );
            let mut seen = String::new();
            let mut ready = false;
            while let Ok(Some(chunk)) = response.chunk().await {
                seen.push_str(&String::from_utf8_lossy(&chunk));
                if !ready && seen.contains("event: ready") {
                    ready = true;
                    permit.take();
                    let _ = ready_tx.send(());
                    seen.clear();
                    // Wait for the next chunk (the end).
                    continue;
                }
                if seen.contains("event: ended") {
                    let _ = ended_tx.send(Instant::now());
                    return;
                }
            }
        });
    }
    drop((ready_tx, ended_tx));
    for _ in 0..streams {
        ready_rx.recv().await.expect("every stream says ready");
    }
    let opened_in = started.elapsed();
    // Let the allocator and the server settle before reading memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let open = rss_mib(pid);

    let revoked_at = Instant::now();
    let signouts: Vec<_> = accounts
        .iter()
        .map(|access| {
            let (client, url, access) = (client.clone(), url.clone(), access.clone());
            tokio::spawn(async move {
                client
                    .post(format!("{url}/auth/logout?scope=global"))
                    .bearer_auth(&access)
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut delays = Vec::with_capacity(streams);
    while let Ok(Some(at)) = tokio::time::timeout(Duration::from_secs(30), ended_rx.recv()).await {
        delays.push(at - revoked_at);
        if delays.len() == streams {
            break;
        }
    }
    for signout in signouts {
        assert!(signout.await.unwrap().is_success());
    }
    delays.sort();
    println!(
        "streams={streams} sessions={} users={users} opened_in_s={:.1} rss_idle_mib={idle:.1} \
         rss_open_mib={open:.1} per_stream_kib={:.1} ended={} p50_ms={:.1} p99_ms={:.1} max_ms={:.1}",
        sessions.len(),
        opened_in.as_secs_f64(),
        (open - idle) * 1024.0 / streams as f64,
        delays.len(),
        percentile(&delays, 50.0),
        percentile(&delays, 99.0),
        percentile(&delays, 100.0),
    );
}
