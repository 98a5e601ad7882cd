//! Building an application instance must never stop another one's pages
//! from answering (leptos-rs/leptos #4773).
//!
//! Generating Leptos routes sets a process-global flag under which any
//! `Resource` first polled waits forever. Every page reads the signed-in user
//! through a blocking resource, so a page rendered while another instance of
//! the same process generated its routes never sent its response head. Here
//! one thread keeps building new instances while this one keeps requesting
//! pages, each with a deadline.

use crate::helpers::*;
use reqwest::StatusCode;
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

/// Far longer than a page takes (milliseconds), far shorter than a hang.
const PAGE_DEADLINE: Duration = Duration::from_secs(10);
const INSTANCES_TO_BUILD: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_keep_answering_while_other_instances_are_being_built() {
    // `/account` is asked again and again with the first refresh cookie,
    // which is retired after its first use: within the grace period that is
    // a concurrent refresh, after it a replay that ends the session. On a
    // busy machine building the instances takes longer than the default
    // 10 s, so the grace period here is the longest allowed.
    let app = TestApp::builder(Backend::Sqlite)
        .with("PORTCULLIS_REFRESH_GRACE", "120s")
        .spawn()
        .await;
    let email = app.signed_up_user().await;
    let refresh_only = format!(
        "{}={}",
        app.refresh_cookie_name(),
        app.cookie(app.refresh_cookie_name())
            .expect("a refresh cookie")
    );

    let building = Arc::new(AtomicBool::new(true));
    let builder = {
        let building = building.clone();
        // Its own thread and runtime, so that building really overlaps with
        // the page renders on this runtime's workers.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                for _ in 0..INSTANCES_TO_BUILD {
                    let env = Arc::new(Environment::new(Backend::Sqlite).await);
                    drop(TestApp::start(env, &[]).await);
                }
            });
            building.store(false, Ordering::SeqCst);
        })
    };

    let pages = [
        ("/login?notice=signed_out", None),
        ("/login", None),
        ("/register", None),
        ("/account", Some(refresh_only.as_str())),
    ];
    let client = plain_client();
    let mut answered = 0usize;
    while building.load(Ordering::SeqCst) {
        for (path, cookie) in pages {
            let mut request = client.get(app.url(path));
            if let Some(cookie) = cookie {
                request = request.header("cookie", cookie);
            }
            let response = tokio::time::timeout(PAGE_DEADLINE, request.send())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "GET {path} got no answer within {PAGE_DEADLINE:?} while another \
                         instance was being built (leptos #4773)"
                    )
                })
                .expect("the request completes");
            assert!(
                response.status() == StatusCode::OK || response.status() == StatusCode::FOUND,
                "GET {path}: {}",
                response.status()
            );
            answered += 1;
        }
    }
    builder.join().expect("the builder thread finishes");
    assert!(
        answered >= pages.len(),
        "pages were requested while instances were built"
    );
    // The signed-in account is untouched by all of it.
    assert_eq!(
        app.current_user().await["SignedIn"]["email"],
        email.as_str()
    );
}
