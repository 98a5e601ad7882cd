//! A logout that answered 200 stays done, even if the server is killed.

use crate::{
    helpers::*,
    process::{ServerProcess, bearer_login_on, bearer_me_on, client, register_on},
};
use reqwest::StatusCode;
use std::sync::Arc;
use tokio::sync::Mutex;

async fn every_logout_that_answered_200_is_still_revoked_after_a_sigkill_and_restart(
    backend: Backend,
) {
    let env = Environment::new(backend).await;
    let mut server = ServerProcess::start(&env, &[]).await;
    let email = register_on(&server, &client()).await;
    let mut tokens = Vec::new();
    for _ in 0..48 {
        tokens.push(bearer_login_on(&server, &email).await.0);
    }

    // Four loops log out concurrently, so requests are in flight when
    // the process dies.
    let answered: Arc<Mutex<Vec<String>>> = Arc::default();
    let loops: Vec<_> = tokens
        .chunks(12)
        .map(|chunk| {
            let (chunk, answered, url) =
                (chunk.to_vec(), answered.clone(), server.url("/auth/logout"));
            tokio::spawn(async move {
                let client = plain_client();
                for token in chunk {
                    match client.post(&url).bearer_auth(&token).send().await {
                        Ok(response) if response.status() == StatusCode::OK => {
                            answered.lock().await.push(token)
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    while answered.lock().await.len() < 16 {
        tokio::task::yield_now().await;
    }
    server.kill();
    for task in loops {
        task.await.unwrap();
    }
    let answered = answered.lock().await.clone();
    assert!(
        answered.len() < tokens.len(),
        "the kill came in the middle of the loop"
    );

    server.restart(&env).await;
    for token in &answered {
        assert_eq!(
            bearer_me_on(&server, token).await,
            StatusCode::UNAUTHORIZED,
            "a logout that answered 200 was lost"
        );
    }
    // Sessions never logged out are untouched.
    let survivors = tokens.iter().filter(|t| !answered.contains(t)).count();
    let mut still_valid = 0;
    for token in tokens.iter().filter(|t| !answered.contains(t)) {
        if bearer_me_on(&server, token).await == StatusCode::OK {
            still_valid += 1;
        }
    }
    assert!(still_valid > 0 && still_valid <= survivors);
    eprintln!(
        "{} logouts answered 200 before SIGKILL; all still revoked after restart",
        answered.len()
    );
}

backend_tests!(every_logout_that_answered_200_is_still_revoked_after_a_sigkill_and_restart,);
