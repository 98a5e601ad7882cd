//! What the per-request revocation check costs, and how fast `GET /auth/me`
//! is on each backend. Everything is measured in one run, against baselines
//! measured in the same run, and printed as ratios.
//!
//!     cargo bench --features ssr --bench throughput
//!
//! Three variants of the same endpoint (`/auth/me`: same handler, same JSON,
//! behind the same middleware stack as the app), differing only in how the
//! request's user is resolved:
//! - `checked`: the real resolver (`middleware::session::resolve_session`).
//!   JWT verification, then one indexed query that joins the session (live?
//!   not expired? this user's?) to its user.
//! - `unchecked`: JWT verification, then the user row by primary key: what a
//!   stateless-JWT server does. No revocation check.
//! - `jwt-only`: JWT verification and nothing else (no database at all), the
//!   floor.
//!
//! The app's own `/auth/me` is measured too, as a check that the stack here
//! matches the real one.
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
    middleware::{Next, from_fn, from_fn_with_state},
    response::{IntoResponse, Response},
    routing::get,
};
use helpers::{Backend, PASSWORD, TestApp, unique_email};
use portcullis::server::{
    api::me,
    middleware::{
        AuthState,
        csrf::refuse_cross_site,
        headers::security_headers,
        server_fn_status::server_fn_status,
        session::{bearer_token, resolve_session},
    },
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
use tower_cookies::{CookieManagerLayer, Cookies};
use tower_http::trace::TraceLayer;

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
            ("checked", format!("{baseline}/checked/me")),
            ("unchecked", format!("{baseline}/unchecked/me")),
            ("jwt-only", format!("{baseline}/jwt-only/me")),
            ("the app's /auth/me", app.url("/auth/me")),
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
        println!("| concurrency | variant | requests/s | µs per request | time vs unchecked |");
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

/// The three variants, each the real `me` handler behind the app's
/// middleware stack (see `startup::app_router`), with only the session
/// resolver swapped. Served like the app (own listener, TCP_NODELAY).
async fn spawn_baselines(state: AppState) -> String {
    let variant = |kind: Variant| {
        Router::new()
            .route("/me", get(me))
            .layer(from_fn(server_fn_status))
            .layer(from_fn_with_state((state.clone(), kind), resolve))
            .layer(from_fn_with_state(state.clone(), refuse_cross_site))
            .layer(CookieManagerLayer::new())
    };
    let router = Router::new()
        .nest("/checked", variant(Variant::Checked))
        .nest("/unchecked", variant(Variant::Unchecked))
        .nest("/jwt-only", variant(Variant::JwtOnly))
        .layer(from_fn_with_state(state.clone(), security_headers))
        .layer(TraceLayer::new_for_http())
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await });
    address
}

#[derive(Clone, Copy)]
enum Variant {
    Checked,
    Unchecked,
    JwtOnly,
}

async fn resolve(
    State((state, variant)): State<(AppState, Variant)>,
    cookies: Cookies,
    request: Request,
    next: Next,
) -> Response {
    match variant {
        Variant::Checked => resolve_session(State(state), cookies, request, next).await,
        Variant::Unchecked => unchecked(State(state), request, next).await,
        Variant::JwtOnly => jwt_only(State(state), request, next).await,
    }
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
            email_verified: user.email_verified,
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
            email_verified: false,
            authenticated_at: Timestamp::now(),
        }));
    next.run(request).await
}
