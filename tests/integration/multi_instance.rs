//! Several real server processes sharing one database: every guarantee
//! holds across instances, and an instance survives its database going away.

use crate::{
    helpers::*,
    process::{ServerProcess, bearer_login_on, bearer_me_on, client, register_on},
};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::{net::TcpListener, sync::Mutex, task::JoinHandle};

async fn a_session_made_on_one_instance_works_on_the_other(backend: Backend) {
    let env = Environment::new(backend).await;
    let a = ServerProcess::start(&env, &[]).await;
    let b = ServerProcess::start(&env, &[]).await;
    let email = register_on(&a, &client()).await;
    let (access, _) = bearer_login_on(&a, &email).await;
    assert_eq!(bearer_me_on(&b, &access).await, StatusCode::OK);
}

async fn a_logout_on_one_instance_kills_the_token_on_the_other_at_once(backend: Backend) {
    let env = Environment::new(backend).await;
    let a = ServerProcess::start(&env, &[]).await;
    let b = ServerProcess::start(&env, &[]).await;
    let email = register_on(&a, &client()).await;
    let (access, _) = bearer_login_on(&a, &email).await;
    assert_eq!(bearer_me_on(&a, &access).await, StatusCode::OK);
    let logout = plain_client()
        .post(b.url("/auth/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    assert_eq!(bearer_me_on(&a, &access).await, StatusCode::UNAUTHORIZED);
}

async fn logging_out_everywhere_on_one_instance_ends_sessions_made_on_the_other(backend: Backend) {
    let env = Environment::new(backend).await;
    let a = ServerProcess::start(&env, &[]).await;
    let b = ServerProcess::start(&env, &[]).await;
    let browser = client();
    let email = register_on(&a, &browser).await;
    let (phone_on_b, _) = bearer_login_on(&b, &email).await;
    let (laptop_on_b, _) = bearer_login_on(&b, &email).await;
    let response = browser
        .post(a.url("/auth/logout?scope=global"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for token in [&phone_on_b, &laptop_on_b] {
        assert_eq!(bearer_me_on(&b, token).await, StatusCode::UNAUTHORIZED);
        assert_eq!(bearer_me_on(&a, token).await, StatusCode::UNAUTHORIZED);
    }
}

async fn a_refresh_race_across_instances_ends_with_exactly_one_live_successor(backend: Backend) {
    let env = Environment::new(backend).await;
    let a = ServerProcess::start(&env, &[]).await;
    let b = ServerProcess::start(&env, &[]).await;
    let email = register_on(&a, &client()).await;
    let (_, refresh) = bearer_login_on(&a, &email).await;
    let attempts: Vec<JoinHandle<reqwest::Response>> = (0..12)
        .map(|i| {
            let url = if i % 2 == 0 {
                a.url("/auth/refresh")
            } else {
                b.url("/auth/refresh")
            };
            let token = refresh.clone();
            tokio::spawn(async move {
                plain_client()
                    .post(url)
                    .json(&json!({ "refresh_token": token }))
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut successors = Vec::new();
    let mut accesses = Vec::new();
    for attempt in attempts {
        let (access, next) = tokens_of(attempt.await.unwrap()).await;
        accesses.push(access);
        successors.push(next);
    }
    successors.dedup();
    assert_eq!(successors.len(), 1, "all racers agree on one successor");
    for access in &accesses {
        assert_eq!(
            bearer_me_on(&b, access).await,
            StatusCode::OK,
            "nobody was logged out"
        );
    }
    // Exactly one live token: the successor refreshes, the original is retired.
    let (access, _) = tokens_of(
        plain_client()
            .post(b.url("/auth/refresh"))
            .json(&json!({ "refresh_token": successors[0] }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let me: Value = plain_client()
        .get(a.url("/auth/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = portcullis::server::db::SessionId(
        uuid::Uuid::parse_str(me["session_id"].as_str().unwrap()).unwrap(),
    );
    let settings = portcullis::server::config::DatabaseSettings::for_url(
        env.database_url.clone(),
        1,
        Duration::from_secs(5),
        Duration::from_secs(5),
    )
    .unwrap();
    let store = portcullis::server::db::Store::connect_lazy(&settings).unwrap();
    assert_eq!(store.live_refresh_tokens(session).await.unwrap(), 1);
    store.close().await;
}

async fn failed_logins_are_throttled_across_instances(backend: Backend) {
    let env = Environment::new(backend).await;
    let limits = [
        ("PORTCULLIS_LOGIN_MAX_FAILURES", "5"),
        ("PORTCULLIS_LOGIN_BACKOFF_BASE", "30s"),
    ];
    let a = ServerProcess::start(&env, &limits).await;
    let b = ServerProcess::start(&env, &limits).await;
    let email = register_on(&a, &client()).await;
    let attempt = |server: &ServerProcess, password: &str| {
        plain_client()
            .post(server.url("/auth/login"))
            .json(&json!({ "email": email, "password": password }))
            .send()
    };
    for i in 0..5 {
        let server = if i % 2 == 0 { &a } else { &b };
        assert_eq!(
            attempt(server, "wrong wrong wrong").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    for server in [&a, &b] {
        let throttled = attempt(server, PASSWORD).await.unwrap();
        assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = throttled.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=30).contains(&retry_after), "{retry_after}");
    }
}

async fn a_new_signing_key_rolls_out_without_signing_anyone_out(backend: Backend) {
    use base64::{Engine as _, engine::general_purpose::STANDARD};
    let env = Environment::new(backend).await;
    let old = format!("2026-05:{}", STANDARD.encode([1u8; 32]));
    let new = format!("2026-11:{}", STANDARD.encode([2u8; 32]));
    // Before: every instance signs and verifies with the old key only.
    let before = ServerProcess::start(&env, &[("PORTCULLIS_JWT_KEYS", &old)]).await;
    // Phase 1: the new key is known everywhere, old still signs.
    let learning =
        ServerProcess::start(&env, &[("PORTCULLIS_JWT_KEYS", &format!("{old},{new}"))]).await;
    // Phase 2: the new key signs, the old one still verifies.
    let rolled =
        ServerProcess::start(&env, &[("PORTCULLIS_JWT_KEYS", &format!("{new},{old}"))]).await;

    let email = register_on(&before, &client()).await;
    let (old_token, _) = bearer_login_on(&before, &email).await;
    let (new_token, _) = bearer_login_on(&rolled, &email).await;
    let kid = |token: &str| jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    assert_eq!(
        (kid(&old_token).as_str(), kid(&new_token).as_str()),
        ("2026-05", "2026-11")
    );

    for server in [&before, &learning, &rolled] {
        assert_eq!(
            bearer_me_on(server, &old_token).await,
            StatusCode::OK,
            "old tokens keep working"
        );
    }
    assert_eq!(bearer_me_on(&learning, &new_token).await, StatusCode::OK);
    assert_eq!(bearer_me_on(&rolled, &new_token).await, StatusCode::OK);
    // Why phase 1 exists: an instance that never learned the new key refuses it.
    assert_eq!(
        bearer_me_on(&before, &new_token).await,
        StatusCode::UNAUTHORIZED
    );
}

async fn graceful_shutdown_lets_in_flight_requests_finish(backend: Backend) {
    let env = Environment::new(backend).await;
    let mut server = ServerProcess::start(&env, &[]).await;
    // A registration spends most of its time hashing: send one, then SIGTERM.
    let url = server.url("/auth/register");
    let in_flight = tokio::spawn(async move {
        plain_client()
            .post(url)
            .json(&json!({ "email": unique_email(), "password": PASSWORD }))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(15)).await;
    let status = server.terminate();
    assert!(
        status.success(),
        "clean exit on SIGTERM: {status:?}\n{}",
        server.output()
    );
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request was answered");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

backend_tests!(
    a_session_made_on_one_instance_works_on_the_other,
    a_logout_on_one_instance_kills_the_token_on_the_other_at_once,
    logging_out_everywhere_on_one_instance_ends_sessions_made_on_the_other,
    a_refresh_race_across_instances_ends_with_exactly_one_live_successor,
    failed_logins_are_throttled_across_instances,
    a_new_signing_key_rolls_out_without_signing_anyone_out,
    graceful_shutdown_lets_in_flight_requests_finish,
);

/// A TCP proxy in front of PostgreSQL that can be closed (connections are
/// cut and new ones refused) and opened again: a database outage on demand.
pub(crate) struct Outage {
    port: u16,
    open: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Outage {
    pub(crate) async fn start(upstream: &'static str, open: bool) -> Outage {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(AtomicBool::new(open));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (accepting, tasks) = (state.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().await.push(link);
            }
        });
        Outage {
            port,
            open: state,
            links,
        }
    }

    pub(crate) async fn close(&self) {
        self.open.store(false, Ordering::SeqCst);
        for link in self.links.lock().await.drain(..) {
            link.abort();
        }
    }

    pub(crate) fn reopen(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    pub(crate) fn database_url(&self, env: &Environment) -> String {
        let name = env.database_url.rsplit('/').next().unwrap();
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

async fn wait_for(client: &Client, url: &str, status: StatusCode) {
    for _ in 0..300 {
        if client.get(url).send().await.ok().map(|r| r.status()) == Some(status) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never answered {status}");
}

mod outage {
    use super::*;

    /// A PostgreSQL test database reachable only through an `Outage` proxy,
    /// and an instance using it (not yet waited for).
    async fn instance_behind_outage(open: bool) -> Option<(Environment, Outage, ServerProcess)> {
        let backend = Backend::postgres_or_skip("database outage").await?;
        let env = Environment::new(backend).await;
        let outage = Outage::start("127.0.0.1:5432", open).await;
        let url = outage.database_url(&env);
        let server = ServerProcess::start_unready(
            &env,
            &[
                ("DATABASE_URL", &url),
                ("PORTCULLIS_DB_ACQUIRE_TIMEOUT", "1s"),
            ],
        );
        Some((env, outage, server))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_outage_answers_503_without_signing_anyone_out_and_recovers() {
        let Some((_env, outage, server)) = instance_behind_outage(true).await else {
            return;
        };
        server.wait_until_ready(Duration::from_secs(30)).await;
        let browser = http()
            .cookie_store(true)
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap();
        register_on(&server, &browser).await;
        assert_eq!(
            browser
                .get(server.url("/auth/me"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );

        outage.close().await;
        let me = browser
            .get(server.url("/auth/me"))
            .send()
            .await
            .expect("an answer, not a hang");
        assert_eq!(
            error_code(me).await,
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable".into())
        );
        // The fault is logged once, with its real cause: not once by the
        // session check and again, with a made-up cause, by the answer.
        let log = server.output();
        assert_eq!(log.matches("ERROR").count(), 1, "{log}");
        assert!(log.contains("Failed to check a session"), "{log}");
        let page = browser
            .get(server.url("/account"))
            .header("accept", "text/html")
            .send()
            .await
            .expect("an answer, not a hang");
        assert_eq!(
            page.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "a page, not a hang"
        );
        let html = page.text().await.unwrap();
        assert!(
            html.contains("temporarily unavailable"),
            "the page says why"
        );
        assert_eq!(
            browser
                .get(server.url("/readyz"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            browser
                .get(server.url("/healthz"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK,
            "alive all along"
        );

        outage.reopen();
        wait_for(&browser, &server.url("/readyz"), StatusCode::OK).await;
        // The same cookies still work: the outage signed nobody out.
        wait_for(&browser, &server.url("/auth/me"), StatusCode::OK).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_instance_started_while_the_database_is_down_becomes_ready_when_it_returns() {
        let Some((_env, outage, server)) = instance_behind_outage(false).await else {
            return;
        };
        let client = http().timeout(Duration::from_secs(15)).build().unwrap();
        wait_for(&client, &server.url("/healthz"), StatusCode::OK).await;
        assert_eq!(
            client
                .get(server.url("/readyz"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let early = client
            .post(server.url("/auth/login"))
            .json(&json!({ "email": "a@example.com", "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(early).await,
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable".into())
        );

        outage.reopen();
        wait_for(&client, &server.url("/readyz"), StatusCode::OK).await;
        let browser = crate::process::client();
        register_on(&server, &browser).await;
        assert_eq!(
            browser
                .get(server.url("/auth/me"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
    }
}
