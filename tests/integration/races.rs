//! Security decisions under parallel bursts against the real server: a
//! throttle that counts before it checks, and a sign-in that cannot outlive
//! the password it was checked against.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Sends every request at once and returns the statuses.
async fn burst(requests: Vec<reqwest::RequestBuilder>) -> Vec<StatusCode> {
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|request| tokio::spawn(async move { request.send().await.map(|r| r.status()) }))
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("the task finishes").expect("an answer"));
    }
    statuses
}

fn count(statuses: &[StatusCode], status: StatusCode) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

async fn parallel_wrong_passwords_for_one_account_get_no_more_checks_than_its_limit(
    backend: Backend,
) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "5")
        .with("PORTCULLIS_LOGIN_IP_MAX_FAILURES", "100000")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    let requests = (0..60)
        .map(|i| {
            plain_client()
                .post(app.url("/auth/login"))
                .json(&json!({ "email": email, "password": format!("wrong guess number {i}") }))
        })
        .collect();
    let statuses = burst(requests).await;
    let checked = count(&statuses, StatusCode::UNAUTHORIZED);
    let refused = count(&statuses, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(checked + refused, 60, "{statuses:?}");
    assert!(
        (1..=5).contains(&checked),
        "{checked} passwords checked against a limit of 5"
    );
}

async fn parallel_guesses_from_one_address_get_no_more_checks_than_its_limit(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "100000")
        .with("PORTCULLIS_LOGIN_IP_MAX_FAILURES", "10")
        .spawn()
        .await;
    // Sixty accounts sprayed at once (unknown ones cost the same check).
    let requests = (0..60)
        .map(|_| {
            plain_client()
                .post(app.url("/auth/login"))
                .json(&json!({ "email": unique_email(), "password": "spray spray spray" }))
        })
        .collect();
    let statuses = burst(requests).await;
    let checked = count(&statuses, StatusCode::UNAUTHORIZED);
    let refused = count(&statuses, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(checked + refused, 60, "{statuses:?}");
    assert!(
        (1..=10).contains(&checked),
        "{checked} passwords checked against a per-address limit of 10"
    );
}

async fn parallel_wrong_current_passwords_get_no_more_checks_than_the_limit(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "5")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    let (access, _) = app.bearer_login(&email, PASSWORD).await;
    let requests = (0..30)
        .map(|i| {
            plain_client()
                .put(app.url("/auth/password"))
                .bearer_auth(&access)
                .json(&json!({
                    "current_password": format!("not the current one {i}"),
                    "new_password": NEW_PASSWORD,
                }))
        })
        .collect();
    let statuses = burst(requests).await;
    let checked = count(&statuses, StatusCode::UNPROCESSABLE_ENTITY);
    let refused = count(&statuses, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(checked + refused, 30, "{statuses:?}");
    assert!(
        (1..=5).contains(&checked),
        "{checked} current passwords checked against a limit of 5"
    );
}

async fn a_sign_in_racing_a_password_change_never_keeps_a_session_with_the_old_password(
    backend: Backend,
) {
    // Sign-ins in flight count against the account; these are all the
    // owner's own, so the limit is out of the way.
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "1000")
        .spawn()
        .await;
    for round in 0..10u64 {
        let (owner, _) = app.new_browser();
        let email = unique_email();
        let registered = sign_up_with(&owner, &app.address, &email).await;
        assert_eq!(registered.status(), StatusCode::OK);
        // Sign-ins with the old password, all at once...
        let logins: Vec<_> = (0..12)
            .map(|_| {
                let request = plain_client().post(app.url("/auth/login")).json(
                    &json!({ "email": email, "password": PASSWORD, "token_delivery": "body" }),
                );
                tokio::spawn(async move {
                    let response = request.send().await.expect("an answer");
                    let status = response.status();
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    (
                        status,
                        body["tokens"]["access_token"].as_str().map(str::to_string),
                    )
                })
            })
            .collect();
        // ...while the owner changes it, somewhere in the middle of them.
        tokio::time::sleep(std::time::Duration::from_millis(5 + 10 * round)).await;
        let changed = server_fn_with(
            &owner,
            &app.address,
            "change_password",
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("new_password_confirm", NEW_PASSWORD),
            ],
        )
        .await;
        assert_eq!(changed.status(), StatusCode::OK, "round {round}");
        for login in logins {
            let (status, access) = login.await.expect("the login finishes");
            assert!(
                status == StatusCode::OK || status == StatusCode::UNAUTHORIZED,
                "round {round}: {status}"
            );
            if let Some(access) = access {
                assert_eq!(
                    app.bearer_me(&access).await.status(),
                    StatusCode::UNAUTHORIZED,
                    "round {round}: a session signed in with the old password outlived the change"
                );
            }
        }
        assert_eq!(
            owner
                .get(app.url("/auth/me"))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK,
            "the owner's own session carries on"
        );
    }
}

backend_tests!(
    parallel_wrong_passwords_for_one_account_get_no_more_checks_than_its_limit,
    parallel_guesses_from_one_address_get_no_more_checks_than_its_limit,
    parallel_wrong_current_passwords_get_no_more_checks_than_the_limit,
    a_sign_in_racing_a_password_change_never_keeps_a_session_with_the_old_password,
);
