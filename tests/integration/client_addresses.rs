//! Who the client is, behind trusted proxies: the address recorded on a
//! session and the bucket its failures are counted in cannot be picked by
//! the client, and IPv6 clients cannot escape the per-address limit by
//! walking their /64.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A JSON sign-in whose forwarding header has these lines, in order.
async fn login_through(
    app: &TestApp,
    client: &reqwest::Client,
    header: &str,
    lines: &[&str],
    email: &str,
    password: &str,
) -> StatusCode {
    let mut request = client
        .post(app.url("/auth/login"))
        .json(&json!({ "email": email, "password": password }));
    for line in lines {
        // reqwest appends: each call is a separate header line.
        request = request.header(header, *line);
    }
    request.send().await.expect("an answer").status()
}

async fn recorded_address(app: &TestApp, client: &reqwest::Client) -> String {
    let body: Value = client
        .get(app.url("/auth/sessions"))
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("a session list");
    body["sessions"][0]["ip"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn a_client_line_in_front_of_the_proxys_line_does_not_pick_the_address(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_TRUSTED_PROXIES", "1")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    app.logout().await;
    let (browser, _) = app.new_browser();
    let status = login_through(
        &app,
        &browser,
        "x-forwarded-for",
        &["6.6.6.6", "198.51.100.7:4711"],
        &email,
        PASSWORD,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(recorded_address(&app, &browser).await, "198.51.100.7");
}

async fn the_standard_forwarded_header_is_read_when_configured(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_TRUSTED_PROXIES", "2")
        .with("PORTCULLIS_FORWARDED_HEADER", "forwarded")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    app.logout().await;
    let (browser, _) = app.new_browser();
    let status = login_through(
        &app,
        &browser,
        "forwarded",
        &[
            "for=6.6.6.6",
            r#"for="[2001:db8:cafe::17]:4711";proto=https, for=192.0.2.60"#,
        ],
        &email,
        PASSWORD,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(recorded_address(&app, &browser).await, "2001:db8:cafe::17");
}

/// The audit's spray: 8 accounts, a per-address limit of 3, and a first
/// header line that changes on every attempt. The trusted line is the same,
/// so the fourth attempt on is refused.
async fn rotating_the_first_forwarded_line_does_not_escape_the_address_limit(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_TRUSTED_PROXIES", "1")
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "100")
        .with("PORTCULLIS_LOGIN_IP_MAX_FAILURES", "3")
        .spawn()
        .await;
    let client = plain_client();
    let mut statuses = Vec::new();
    for i in 0..8 {
        let spoofed = format!("6.6.6.{i}");
        statuses.push(
            login_through(
                &app,
                &client,
                "x-forwarded-for",
                &[&spoofed, "198.51.100.7"],
                &unique_email(),
                "spraying passwords",
            )
            .await,
        );
    }
    let mut expected = vec![StatusCode::UNAUTHORIZED; 3];
    expected.extend([StatusCode::TOO_MANY_REQUESTS; 5]);
    assert_eq!(statuses, expected);
}

/// Two clients behind the same proxy whose proxy writes `ip:port`: each
/// keeps its own bucket, instead of both falling back to the proxy's.
async fn clients_with_ports_in_the_header_keep_their_own_buckets(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_TRUSTED_PROXIES", "1")
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "100")
        .with("PORTCULLIS_LOGIN_IP_MAX_FAILURES", "2")
        .spawn()
        .await;
    let client = plain_client();
    for _ in 0..3 {
        login_through(
            &app,
            &client,
            "x-forwarded-for",
            &["198.51.100.7:4711"],
            &unique_email(),
            "spraying",
        )
        .await;
    }
    let attacker = login_through(
        &app,
        &client,
        "x-forwarded-for",
        &["198.51.100.7:5000"],
        &unique_email(),
        "spraying",
    )
    .await;
    assert_eq!(
        attacker,
        StatusCode::TOO_MANY_REQUESTS,
        "the same address, another port"
    );
    let other = login_through(
        &app,
        &client,
        "x-forwarded-for",
        &["203.0.113.9:4711"],
        &unique_email(),
        "an honest typo",
    )
    .await;
    assert_eq!(
        other,
        StatusCode::UNAUTHORIZED,
        "another client is not locked"
    );
}

/// 8 failures from `2001:db8:1:2::1` … `::8`: one /64, one bucket.
async fn ipv6_addresses_of_one_64_share_one_limit(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_TRUSTED_PROXIES", "1")
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "100")
        .with("PORTCULLIS_LOGIN_IP_MAX_FAILURES", "3")
        .spawn()
        .await;
    let client = plain_client();
    let mut statuses = Vec::new();
    for i in 1..=8 {
        let address = format!("2001:db8:1:2::{i}");
        statuses.push(
            login_through(
                &app,
                &client,
                "x-forwarded-for",
                &[&address],
                &unique_email(),
                "walking the /64",
            )
            .await,
        );
    }
    let mut expected = vec![StatusCode::UNAUTHORIZED; 3];
    expected.extend([StatusCode::TOO_MANY_REQUESTS; 5]);
    assert_eq!(statuses, expected);
    let neighbour = login_through(
        &app,
        &client,
        "x-forwarded-for",
        &["2001:db8:1:3::1"],
        &unique_email(),
        "another subscriber",
    )
    .await;
    assert_eq!(
        neighbour,
        StatusCode::UNAUTHORIZED,
        "the next /64 is someone else"
    );
}

/// Without trusted proxies a client's forwarding header is ignored: it
/// cannot pick its bucket by sending one.
async fn without_trusted_proxies_forwarding_headers_are_ignored(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "100")
        .with("PORTCULLIS_LOGIN_IP_MAX_FAILURES", "2")
        .spawn()
        .await;
    let client = plain_client();
    let mut statuses = Vec::new();
    for i in 0..3 {
        let spoofed = format!("6.6.6.{i}");
        statuses.push(
            login_through(
                &app,
                &client,
                "x-forwarded-for",
                &[&spoofed],
                &unique_email(),
                "spraying",
            )
            .await,
        );
    }
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

backend_tests!(
    a_client_line_in_front_of_the_proxys_line_does_not_pick_the_address,
    the_standard_forwarded_header_is_read_when_configured,
    rotating_the_first_forwarded_line_does_not_escape_the_address_limit,
    clients_with_ports_in_the_header_keep_their_own_buckets,
    ipv6_addresses_of_one_64_share_one_limit,
    without_trusted_proxies_forwarding_headers_are_ignored,
);
