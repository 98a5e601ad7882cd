//! The app's files under `/pkg`: served under content-hashed names that the
//! pages link to, `immutable` for a year, and precompressed (the build's
//! `.br`/`.gz` twins, chosen by `Accept-Encoding`). Static files touch no
//! database, so one backend is enough. The site here is written by the test:
//! small files with known bytes, and twins with bytes of their own, so an
//! answer shows which file it came from.

use crate::helpers::*;
use reqwest::{StatusCode, header};
use std::{path::Path, sync::Arc, time::Duration};

// Each longer than the 32 bytes below which nothing is compressed.
const JS: &[u8] = b"export default function init() { return 'the glue code'; }\n";
const WASM: &[u8] = b"\0asm\x01\0\0\0 the module, with a few bytes of its own";
const CSS: &[u8] = b"body { margin: 0 } main { padding: 1rem } h1 { font-size: 2rem }\n";

/// Writes the app's three files (the WASM under both names a build may
/// give it) and, when `twins`, their brotli and gzip twins after them.
fn write_site(site: &Path, twins: bool) {
    let pkg = site.join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    for (name, bytes) in [
        ("portcullis.js", JS),
        ("portcullis.wasm", WASM),
        ("portcullis_bg.wasm", WASM),
        ("portcullis.css", CSS),
    ] {
        std::fs::write(pkg.join(name), bytes).unwrap();
        if twins {
            std::fs::write(pkg.join(format!("{name}.br")), format!("br of {name}")).unwrap();
            std::fs::write(pkg.join(format!("{name}.gz")), format!("gz of {name}")).unwrap();
        }
    }
}

async fn app_with_site(twins: bool, edit: impl FnOnce(&Path)) -> TestApp {
    let env = Environment::new(Backend::Sqlite).await;
    let site = env.data_dir.path().join("site");
    write_site(&site, twins);
    edit(&site);
    TestApp::start(Arc::new(env), &[]).await
}

/// The `/pkg/…` addresses the login page links to, ending in `ending`.
async fn linked(app: &TestApp, ending: &str) -> Vec<String> {
    let response = app
        .bare_client()
        .get(app.url("/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let html = response.text().await.unwrap();
    let mut found: Vec<String> = html
        .split(['"', '\''])
        .filter(|part| part.starts_with("/pkg/") && part.ends_with(ending))
        .map(str::to_string)
        .collect();
    // (The inline hydration script names the files without `/pkg/`.)
    found.dedup();
    found
}

/// The hash in `/pkg/portcullis.<hash>.<ending>`, checked to be 16 hex digits.
fn hash_of(address: &str) -> String {
    let name = address.trim_start_matches("/pkg/portcullis.");
    let hash = name.split(['.', '_']).next().unwrap();
    assert_eq!(hash.len(), 16, "{address}");
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{address}");
    hash.to_string()
}

async fn get(app: &TestApp, path: &str, accept_encoding: &str) -> reqwest::Response {
    app.bare_client()
        .get(app.url(path))
        .header(header::ACCEPT_ENCODING, accept_encoding)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn pages_link_hashed_immutable_precompressed_assets() {
    let app = app_with_site(true, |_| {}).await;
    let scripts = linked(&app, ".js").await;
    let modules = linked(&app, ".wasm").await;
    let styles = linked(&app, ".css").await;
    assert_eq!(scripts.len(), 1, "{scripts:?}");
    assert_eq!(modules.len(), 1, "{modules:?}");
    assert_eq!(styles.len(), 1, "{styles:?}");
    // One hash for the three: a new build is new names for all of them.
    let hash = hash_of(&scripts[0]);
    assert_eq!(hash_of(&modules[0]), hash);
    assert_eq!(hash_of(&styles[0]), hash);

    for (address, file, original, content_type) in [
        (&scripts[0], "portcullis.js", JS, "javascript"),
        (&modules[0], "portcullis_bg.wasm", WASM, "application/wasm"),
        (&styles[0], "portcullis.css", CSS, "text/css"),
    ] {
        let file = if address.ends_with("_bg.wasm") || !file.ends_with(".wasm") {
            file.to_string()
        } else {
            "portcullis.wasm".to_string()
        };
        for (accept, encoding, body) in [
            ("br, gzip", Some("br"), format!("br of {file}").into_bytes()),
            (
                "gzip;q=1.0, br;q=0.5",
                Some("gzip"),
                format!("gz of {file}").into_bytes(),
            ),
            ("gzip", Some("gzip"), format!("gz of {file}").into_bytes()),
            ("identity", None, original.to_vec()),
        ] {
            let response = get(&app, address, accept).await;
            assert_eq!(response.status(), StatusCode::OK, "{address} {accept}");
            let headers = response.headers().clone();
            assert_eq!(
                headers[header::CACHE_CONTROL],
                "public, max-age=31536000, immutable",
                "{address}"
            );
            assert_eq!(
                headers
                    .get(header::CONTENT_ENCODING)
                    .map(|v| v.to_str().unwrap()),
                encoding,
                "{address} {accept}"
            );
            assert!(
                headers[header::CONTENT_TYPE]
                    .to_str()
                    .unwrap()
                    .contains(content_type),
                "{address}: {:?}",
                headers[header::CONTENT_TYPE]
            );
            assert!(
                headers.get_all(header::VARY).iter().any(|v| v
                    .to_str()
                    .unwrap()
                    .to_ascii_lowercase()
                    .contains("accept-encoding")),
                "{address} {accept}: {headers:?}"
            );
            assert_eq!(response.bytes().await.unwrap(), body, "{address} {accept}");
        }
    }

    // The plain names still answer, revalidated, not kept.
    let plain = get(&app, "/pkg/portcullis.js", "identity").await;
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(plain.headers()[header::CACHE_CONTROL], "no-cache");
    // Another build's name is not this build's file, and a miss is not kept.
    let stale = get(&app, "/pkg/portcullis.0123456789abcdef.js", "br").await;
    assert_eq!(stale.status(), StatusCode::NOT_FOUND);
    assert_eq!(stale.headers()[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn changed_files_get_new_names() {
    let first = app_with_site(false, |_| {}).await;
    let before = hash_of(&linked(&first, ".js").await[0]);
    let second = app_with_site(false, |site| {
        std::fs::write(
            site.join("pkg/portcullis.css"),
            b"body { margin: 1px } main { padding: 1rem } h1 { font-size: 2rem }\n",
        )
        .unwrap();
    })
    .await;
    let after = hash_of(&linked(&second, ".js").await[0]);
    assert_ne!(before, after);
    // Without twins the hashed file is compressed on the fly.
    let address = &linked(&second, ".css").await[0];
    let response = get(&second, address, "gzip").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
    assert_eq!(
        response.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
}

#[tokio::test]
async fn stale_twins_are_not_sent() {
    // A rebuild without precompression leaves the old twins behind: they
    // are older than their files, and must not stand in for them.
    let app = app_with_site(true, |site| {
        let old = std::time::SystemTime::now() - Duration::from_secs(3600);
        for entry in std::fs::read_dir(site.join("pkg")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "br" || e == "gz") {
                std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_modified(old)
                    .unwrap();
            }
        }
    })
    .await;
    let address = &linked(&app, ".css").await[0];
    let response = get(&app, address, "gzip").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
    let body = response.bytes().await.unwrap();
    assert_ne!(
        &body[..],
        b"gz of portcullis.css",
        "the stale twin was sent"
    );
    assert_eq!(&body[..2], [0x1f, 0x8b], "a gzip stream");
}

#[tokio::test]
async fn without_a_built_site_the_plain_names_are_linked() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    assert_eq!(
        linked(&app, ".js").await,
        vec!["/pkg/portcullis.js".to_string()]
    );
    assert_eq!(
        linked(&app, ".css").await,
        vec!["/pkg/portcullis.css".to_string()]
    );
}
