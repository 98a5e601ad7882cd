//! Throttles that cannot be turned into a flood: registration is throttled
//! like sign-in, and refused attempts cost no audit row each, one per lock.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

async fn events(app: &TestApp, kind: &str) -> i64 {
    app.count(&format!(
        "SELECT COUNT(*) FROM auth_events WHERE kind = '{kind}'"
    ))
    .await
}

async fn register_json(app: &TestApp, email: &str) -> StatusCode {
    plain_client()
        .post(app.url("/auth/register"))
        .json(&json!({ "email": email, "password": PASSWORD, "password_confirm": PASSWORD }))
        .send()
        .await
        .expect("an answer")
        .status()
}

/// The audit's 12 quick registrations from one address: past the limit they
/// are refused with 429, whatever the address, and the lock is audited once.
async fn registrations_from_one_address_are_throttled(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_REGISTER_IP_MAX_ATTEMPTS", "3")
        .with("PORTCULLIS_LOGIN_BACKOFF_BASE", "30s")
        .spawn()
        .await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(register_json(&app, &unique_email()).await);
    }
    let mut expected = vec![StatusCode::ACCEPTED; 3];
    expected.extend([StatusCode::TOO_MANY_REQUESTS; 9]);
    assert_eq!(statuses, expected);
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 3);
    assert_eq!(
        events(&app, "throttle_locked").await,
        1,
        "one event for the lock"
    );
    assert_eq!(events(&app, "registered").await, 3);
}

/// Probing whether one address has an account is slowed down too, and a
/// refused registration leaves an audit event.
async fn one_address_cannot_be_probed_again_and_again(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_REGISTER_EMAIL_MAX_ATTEMPTS", "2")
        .with("PORTCULLIS_LOGIN_BACKOFF_BASE", "30s")
        .spawn()
        .await;
    let email = unique_email();
    // The taken address is answered like a free one.
    assert_eq!(register_json(&app, &email).await, StatusCode::ACCEPTED);
    assert_eq!(register_json(&app, &email).await, StatusCode::ACCEPTED);
    assert_eq!(events(&app, "registration_refused").await, 1);
    for _ in 0..3 {
        assert_eq!(
            register_json(&app, &email).await,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    assert_eq!(
        events(&app, "registration_refused").await,
        1,
        "throttled: no row each"
    );
    assert_eq!(events(&app, "throttle_locked").await, 1);
    // Another address from the same client is not affected.
    assert_eq!(
        register_json(&app, &unique_email()).await,
        StatusCode::ACCEPTED
    );
}

/// The audit's 300 throttled sign-ins wrote 300 rows with attacker-chosen
/// text. Now: the checked failures (as many as the limit) and one lock.
async fn three_hundred_throttled_sign_ins_write_one_lock_event(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "5")
        .with("PORTCULLIS_LOGIN_BACKOFF_BASE", "5m")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    app.logout().await;
    let before = app.count("SELECT COUNT(*) FROM auth_events").await;
    let mut statuses = Vec::new();
    for round in 0..10 {
        let requests: Vec<_> = (0..30)
            .map(|i| {
                plain_client()
                    .post(app.url("/auth/login"))
                    .header("user-agent", format!("attacker-chosen agent {round}-{i}"))
                    .json(&json!({ "email": email, "password": "wrong wrong wrong" }))
                    .send()
            })
            .collect();
        for response in futures_join(requests).await {
            statuses.push(response.expect("an answer").status());
        }
    }
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((checked, refused), (5, 295), "{statuses:?}");
    let written = app.count("SELECT COUNT(*) FROM auth_events").await - before;
    assert_eq!(events(&app, "login_failed").await, 5);
    assert_eq!(events(&app, "throttle_locked").await, 1);
    assert_eq!(written, 6, "five checked failures and one lock");
}

/// Runs the requests concurrently, in order of creation.
async fn futures_join<F: std::future::Future + Send + 'static>(futures: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let tasks: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for task in tasks {
        outputs.push(task.await.expect("the task finishes"));
    }
    outputs
}

backend_tests!(
    registrations_from_one_address_are_throttled,
    one_address_cannot_be_probed_again_and_again,
    three_hundred_throttled_sign_ins_write_one_lock_event,
);
