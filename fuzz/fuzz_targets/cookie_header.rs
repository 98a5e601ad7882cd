//! Session cookie parsing exactly as in production: `CookieManagerLayer`
//! parses the `Cookie` header(s), `SessionCookies::read` picks our two.
//!
//! The fuzz input is split on '\n' into several `Cookie` headers (as HTTP/2
//! clients send them); inputs that are not valid header values are skipped.
//! Properties: no panic; every value returned is non-empty, at most 4096
//! bytes and came from the input (verbatim, or percent-decoded as the cookie
//! crate does); and it is exactly what an independent model of the parsing
//! predicts, for both cookie names, with and without the `__Host-` prefix.
#![no_main]

use http::{HeaderValue, Request, Response, header::COOKIE};
use libfuzzer_sys::fuzz_target;
use portcullis::server::cookies::{CookieCredentials, SessionCookies};
use std::convert::Infallible;
use tower::{Layer, ServiceExt, service_fn};
use tower_cookies::{CookieManagerLayer, Cookies};

/// Percent-decodes `%XX` escapes; anything else is kept literally.
fn pct_decode(b: &[u8]) -> Vec<u8> {
    let (mut out, mut i) = (Vec::new(), 0);
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|&c| char::from(c).to_digit(16));
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => (out.push((hi * 16 + lo) as u8), i += 3),
            (c, _, _) => (out.push(c), i += 1),
        };
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The model: the last `name=value` pair (over all headers, split on ';',
/// trimmed, percent-decoded) whose name is `name`; then `read`'s filter.
fn model(headers: &[&[u8]], name: &str) -> Option<String> {
    let mut found = None;
    for text in headers.iter().filter_map(|h| std::str::from_utf8(h).ok()) {
        for pair in text.split(';') {
            let Some((n, v)) = pair.split_once('=') else {
                continue;
            };
            let (n, v) = (n.trim(), v.trim());
            // A pair whose name or value does not decode to UTF-8 is dropped.
            let decode = |s: &str| String::from_utf8(pct_decode(s.as_bytes())).ok();
            if let (false, Some(n), Some(v)) = (n.is_empty(), decode(n), decode(v)) {
                if n == name {
                    found = Some(v);
                }
            }
        }
    }
    found.filter(|v| !v.is_empty() && v.len() <= 4096)
}

fuzz_target!(|data: &[u8]| {
    let headers: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let mut request = Request::builder();
    for h in &headers {
        let Ok(value) = HeaderValue::from_bytes(h) else {
            return;
        };
        request = request.header(COOKIE, value);
    }
    let request = request.body(()).unwrap();

    // The production stack: the layer parses, the handler reads.
    let handler = service_fn(|req: Request<()>| async move {
        let cookies = req
            .extensions()
            .get::<Cookies>()
            .expect("layer adds Cookies");
        let read = |secure| SessionCookies::new(secure).read(cookies);
        Ok::<_, Infallible>(Response::new([read(false), read(true)]))
    });
    let service = CookieManagerLayer::new().layer(handler);
    let response = futures::executor::block_on(service.oneshot(request)).unwrap();

    let decoded_input = pct_decode(data);
    for (secure, creds) in [false, true].into_iter().zip(response.into_body()) {
        let CookieCredentials { access, refresh } = creds;
        let names = SessionCookies::new(secure);
        for (got, name) in [
            (access, names.access_name()),
            (refresh, names.refresh_name()),
        ] {
            if let Some(v) = &got {
                assert!(
                    !v.is_empty() && v.len() <= 4096,
                    "{name}: bad length {}",
                    v.len()
                );
                let from_input =
                    contains(data, v.as_bytes()) || contains(&decoded_input, v.as_bytes());
                assert!(from_input, "{name}={v:?} is not in the input");
            }
            let input = || String::from_utf8_lossy(data);
            assert_eq!(got, model(&headers, name), "{name} from {:?}", input());
        }
    }
});
