//! A login storm meets a bounded hashing pool: every request is answered,
//! either for real or with a quick `busy`, and a shed request changes
//! nothing.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// One hashing worker and a queue of two: a burst of this many logins must
/// overflow it.
const BURST: usize = 24;

async fn storm(
    app: &TestApp,
    email: &str,
    password: &str,
) -> Vec<(StatusCode, Option<String>, Value)> {
    let requests = (0..BURST).map(|_| {
        let client = plain_client();
        let url = app.url("/auth/login");
        let body = json!({ "email": email, "password": password, "token_delivery": "body" });
        async move {
            let response = client
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("every login is answered");
            let status = response.status();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap_or_default().to_string());
            (
                status,
                retry_after,
                response.json().await.unwrap_or(Value::Null),
            )
        }
    });
    futures_join_all(requests).await
}

async fn futures_join_all<F: Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("the request task finishes"));
    }
    out
}

fn assert_busy_is_well_formed(answers: &[(StatusCode, Option<String>, Value)]) {
    for (status, retry_after, body) in answers {
        if *status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(body["code"], "busy", "{body}");
            assert_eq!(
                body["error"],
                "Too many sign-ins right now. Try again in a moment."
            );
            let seconds: u64 = retry_after
                .as_deref()
                .expect("Retry-After on busy")
                .parse()
                .expect("whole seconds");
            assert!((1..=3).contains(&seconds), "Retry-After {seconds}");
        }
    }
}

/// A sign-in form posted without JavaScript, as a browser posts it.
fn plain_form_login(app: &TestApp, email: &str) -> tokio::task::JoinHandle<reqwest::Response> {
    let (client, url, referer) = (app.bare_client(), app.url("/api/login"), app.url("/login"));
    let form = [
        ("email".to_string(), email.to_string()),
        ("password".to_string(), PASSWORD.to_string()),
    ];
    tokio::spawn(async move {
        client
            .post(url)
            .header("accept", "text/html,application/xhtml+xml")
            .header("referer", referer)
            .form(&form)
            .send()
            .await
            .expect("the form post is answered")
    })
}

async fn a_login_storm_gets_successes_or_fast_busy_answers_and_no_session_without_a_200(
    backend: Backend,
) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_HASH_CONCURRENCY", "1")
        .with("PORTCULLIS_HASH_QUEUE_CAPACITY", "2")
        // Attempts in flight count against the account: let the burst through.
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "1000")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    let sessions_before = app.count("SELECT COUNT(*) FROM sessions").await;

    let answers = storm(&app, &email, PASSWORD).await;
    let ok = answers.iter().filter(|a| a.0 == StatusCode::OK).count();
    let busy = answers
        .iter()
        .filter(|a| a.0 == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert_eq!(
        ok + busy,
        BURST,
        "only 200 or 503: {:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    assert!(ok >= 1, "some logins get through");
    assert!(
        busy >= 1,
        "a burst of {BURST} overflows one worker and a queue of two"
    );
    assert_busy_is_well_formed(&answers);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions").await - sessions_before,
        i64::try_from(ok).unwrap(),
        "exactly one session per 200, none for a busy answer"
    );
    // The shed load is on the record, as a count, without the password.
    let shed: i64 = app
        .count("SELECT COUNT(*) FROM auth_events WHERE kind = 'load_shed'")
        .await;
    assert!(shed >= 1);
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM auth_events WHERE detail LIKE '%{PASSWORD}%'"
        ))
        .await,
        0
    );
    // Once the storm is over, the same login works.
    let (access, _) = app.bearer_login(&email, PASSWORD).await;
    assert_eq!(app.bearer_me(&access).await.status(), StatusCode::OK);
}

async fn a_shed_wrong_password_is_not_counted_against_the_account(backend: Backend) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_HASH_CONCURRENCY", "1")
        .with("PORTCULLIS_HASH_QUEUE_CAPACITY", "2")
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "1000")
        .with("PORTCULLIS_LOGIN_IP_MAX_FAILURES", "1000")
        .spawn()
        .await;
    let email = app.signed_up_user().await;

    let answers = storm(&app, &email, "not the password at all").await;
    let refused = answers
        .iter()
        .filter(|a| a.0 == StatusCode::UNAUTHORIZED)
        .count();
    let busy = answers
        .iter()
        .filter(|a| a.0 == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert_eq!(refused + busy, BURST);
    assert!(busy >= 1 && refused >= 1, "{refused} refused, {busy} busy");
    assert_busy_is_well_formed(&answers);
    let counted = app
        .count(&format!(
            "SELECT COALESCE(MAX(failures), 0) FROM login_throttle WHERE key = 'account:{email}'"
        ))
        .await;
    assert_eq!(
        counted,
        i64::try_from(refused).unwrap(),
        "only checked passwords count as failures"
    );
}

async fn without_javascript_a_shed_sign_in_shows_the_busy_message_on_the_login_page(
    backend: Backend,
) {
    let app = TestApp::builder(backend)
        .with("PORTCULLIS_HASH_CONCURRENCY", "1")
        .with("PORTCULLIS_HASH_QUEUE_CAPACITY", "2")
        // Attempts in flight count against the account: let the burst through.
        .with("PORTCULLIS_LOGIN_MAX_FAILURES", "1000")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    // Form posts ride along with a burst until one of them is shed (the
    // first round nearly always does it).
    let mut shed_page = None;
    for _ in 0..10 {
        let burst: Vec<_> = (0..BURST)
            .map(|_| {
                let (client, url) = (plain_client(), app.url("/auth/login"));
                let body = json!({ "email": email, "password": PASSWORD });
                tokio::spawn(async move {
                    client
                        .post(url)
                        .json(&body)
                        .send()
                        .await
                        .map(|r| r.status())
                })
            })
            .collect();
        let forms: Vec<_> = (0..4).map(|_| plain_form_login(&app, &email)).collect();
        for form in forms {
            let response = form.await.expect("the form task finishes");
            // Back to the page the form was on, absolute or not.
            let location = response
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(|l| {
                    l.strip_prefix(app.address.as_str())
                        .unwrap_or(l)
                        .to_string()
                });
            if response.status() == StatusCode::FOUND {
                assert!(
                    location.as_deref().is_some_and(|l| l.starts_with("/login")),
                    "{location:?}"
                );
                shed_page = location;
            } else {
                assert_eq!(
                    response.status(),
                    StatusCode::SEE_OTHER,
                    "a form sign-in either goes on or comes back"
                );
            }
        }
        for post in burst {
            let _ = post.await;
        }
        if shed_page.is_some() {
            break;
        }
    }
    let location = shed_page.expect("a form post was shed within 10 bursts");
    let page = app
        .bare_client()
        .get(app.url(&location))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Too many sign-ins right now. Try again in a moment."),
        "{location}: {html}"
    );
}

backend_tests!(
    a_login_storm_gets_successes_or_fast_busy_answers_and_no_session_without_a_200,
    a_shed_wrong_password_is_not_counted_against_the_account,
    without_javascript_a_shed_sign_in_shows_the_busy_message_on_the_login_page,
);
