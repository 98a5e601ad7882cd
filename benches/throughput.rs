//! What the per-request revocation check costs, and how fast `GET /auth/me`
//! is on each backend. Everything is measured in one run, against baselines
//! measured in the same run, and printed as ratios.
//!
//!     cargo bench --features ssr --bench throughput
//!
//! Three variants of the same endpoint (`/auth/me`, same handler, same JSON):
//! - `checked`:  the real one. JWT verification, then one indexed query that
//!   joins the session (live? not expired? this user's?) to its user.
//! - `unchecked`: JWT verification, then the user row by primary key: what a
//!   stateless-JWT server does. No revocation check.
//! - `jwt-only`: JWT verification and nothing else (no database at all), the
//!   floor.
//!
//! The load generator runs in the same process on the same two cores, so the
//! absolute numbers are conservative; the ratios are the point. Variants run
//! interleaved, several rounds each, and the median round counts.

#[path = "../tests/integration/helpers.rs"]
#[allow(dead_code, unused_macros, unused_imports)]
mod helpers;

use axum::{
    Router,
    extract::{Request, State},
    middleware::{Next, from_fn_with_state},
    response::{IntoResponse, Response},
    routing::get,
};
use helpers::{Backend, PASSWORD, TestApp, unique_email};
use portcullis::server::{
    api::me,
    middleware::{AuthState, session::bearer_token},
    service::Principal,
    state::AppState,
    time::Timestamp,
};
use reqwest::{Client, StatusCode};
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

const ROUNDS: usize = 5;
const ROUND: Duration = Duration::from_millis(1500);
const CONCURRENCY: [usize; 2] = [1, 8];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut backends = vec![Backend::Sqlite];
    match Backend::postgres_or_skip("the PostgreSQL benchmark").await {
        Some(postgres) => backends.push(postgres),
        None => println!("(PostgreSQL not reachable: measuring SQLite only)"),
    }
    println!(
        "# GET /auth/me, {ROUNDS} interleaved rounds of {} ms, median round\n",
        ROUND.as_millis()
    );
    let mut checked_rps = Vec::new();
    for backend in backends {
        let app = TestApp::spawn(backend).await;
        let email = unique_email();
        assert_eq!(
            app.register(&email, PASSWORD).await.status(),
            StatusCode::OK
        );
        let (token, _) = app.bearer_login(&email, PASSWORD).await;
        let baseline = spawn_baselines(app.state.clone()).await;

        let targets = [
            ("checked", app.url("/auth/me")),
            ("unchecked", format!("{baseline}/unchecked/me")),
            ("jwt-only", format!("{baseline}/jwt-only/me")),
        ];
        for (_, url) in &targets {
            let response = Client::new()
                .get(url)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{url}");
        }
        println!("## {backend:?}\n");
        println!("| concurrency | variant | requests/s | µs per request | vs unchecked |");
        println!("|---|---|---|---|---|");
        for concurrency in CONCURRENCY {
            let mut rounds: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
            for _ in 0..ROUNDS {
                for (i, (_, url)) in targets.iter().enumerate() {
                    rounds[i].push(requests_per_second(url, &token, concurrency).await);
                }
            }
            let medians: Vec<f64> = rounds.into_iter().map(median).collect();
            for (i, (name, _)) in targets.iter().enumerate() {
                println!(
                    "| {concurrency} | {name} | {:.0} | {:.0} | {:.2}x |",
                    medians[i],
                    1e6 * concurrency as f64 / medians[i],
                    medians[1] / medians[i]
                );
            }
            if concurrency == CONCURRENCY[1] {
                checked_rps.push((backend, medians[0]));
            }
        }

        // The check alone, without HTTP: verify + session query, against verify.
        let iterations = 4000;
        let started = Instant::now();
        for _ in 0..iterations {
            app.state.auth.tokens().verify_access(&token).unwrap();
        }
        let verify = started.elapsed().as_secs_f64() / iterations as f64;
        let started = Instant::now();
        for _ in 0..iterations {
            app.state.auth.authenticate(&token).await.unwrap();
        }
        let authenticate = started.elapsed().as_secs_f64() / iterations as f64;
        println!(
            "\nIn-process, one caller: JWT verification {:.1} µs; verification plus the revocation query {:.1} µs (the check adds {:.1} µs).\n",
            verify * 1e6,
            authenticate * 1e6,
            (authenticate - verify) * 1e6
        );
    }
    if let [(a, a_rps), (b, b_rps)] = checked_rps.as_slice() {
        println!(
            "## Backends, same run, {} concurrent clients\n",
            CONCURRENCY[1]
        );
        println!(
            "GET /auth/me: {a:?} {a_rps:.0} req/s, {b:?} {b_rps:.0} req/s ({:.2}x)",
            a_rps / b_rps
        );
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Keeps `concurrency` keep-alive clients busy for one round.
async fn requests_per_second(url: &str, token: &str, concurrency: usize) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (url, token, done, stop) = (
                url.to_string(),
                token.to_string(),
                done.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let client = Client::builder().pool_max_idle_per_host(1).build().unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let response = client.get(&url).bearer_auth(&token).send().await.unwrap();
                    assert_eq!(response.status(), StatusCode::OK);
                    response.bytes().await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let started = Instant::now();
    tokio::time::sleep(ROUND).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let count = done.load(Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    count as f64 / elapsed
}

/// The baselines: the real `me` handler behind resolvers without the
/// revocation check, served like the real app (own listener, TCP_NODELAY).
async fn spawn_baselines(state: AppState) -> String {
    let router = Router::new()
        .route(
            "/unchecked/me",
            get(me).layer(from_fn_with_state(state.clone(), unchecked)),
        )
        .route(
            "/jwt-only/me",
            get(me).layer(from_fn_with_state(state.clone(), jwt_only)),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

/// JWT, then the user row by id: trusts the token until it expires.
async fn unchecked(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(Ok(token)) = bearer_token(request.headers()) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Ok(claims) = state.auth.tokens().verify_access(token) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Ok(Some(user)) = state.store.find_user(claims.sub).await else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    request
        .extensions_mut()
        .insert(AuthState::SignedIn(Principal {
            user_id: user.id,
            session_id: claims.sid,
            email: user.email,
            authenticated_at: Timestamp::now(),
        }));
    next.run(request).await
}

/// JWT only, no database: the floor.
async fn jwt_only(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(Ok(token)) = bearer_token(request.headers()) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Ok(claims) = state.auth.tokens().verify_access(token) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    request
        .extensions_mut()
        .insert(AuthState::SignedIn(Principal {
            user_id: claims.sub,
            session_id: claims.sid,
            email: String::new(),
            authenticated_at: Timestamp::now(),
        }));
    next.run(request).await
}
