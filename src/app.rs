//! The HTML shell and the routes.

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::{
    SsrMode,
    components::{Route, Router, Routes},
    path,
};

use crate::{
    components::{AuthProvider, Header, LiveSignOut, SessionWatcher},
    pages::{
        AccountPage, ConfirmEmailPage, ForgotPasswordPage, HomePage, LoginPage, NotFoundPage,
        RecoveryCodesPage, RegisterPage, ResetPasswordPage, VerifyEmailPage, VerifySignInPage,
    },
};

/// The document around the app. On the server it also sets the page's
/// Content-Security-Policy, built around this response's nonce: only scripts
/// carrying it (Leptos's hydration and resource scripts) may run inline, and
/// WASM may be compiled. No `unsafe-inline`.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    set_content_security_policy(&options);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <meta name="description" content="Portcullis: sign in, and sign out properly." />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                // The app's stylesheet, named like its script (hashed when
                // served for good; see `PkgAssets`). `id="leptos"` is where
                // `cargo leptos watch` swaps in a changed stylesheet.
                <link
                    rel="stylesheet"
                    id="leptos"
                    href=format!("/{}/{}.css", options.site_pkg_dir, options.output_name)
                />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[cfg(feature = "ssr")]
fn set_content_security_policy(options: &LeptosOptions) {
    use axum::http::{HeaderValue, header};
    use leptos::nonce::use_nonce;

    let (Some(nonce), Some(response)) =
        (use_nonce(), use_context::<leptos_axum::ResponseOptions>())
    else {
        return;
    };
    // `cargo leptos watch` reloads the page over a websocket on its own port.
    let connect = if std::env::var("LEPTOS_WATCH").is_ok() {
        format!(
            "'self' ws://127.0.0.1:{0} ws://localhost:{0}",
            options.reload_port
        )
    } else {
        "'self'".to_string()
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src {connect}; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response.insert_header(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// Every page renders completely on the server before a byte is sent
/// (`SsrMode::Async`): redirects are real HTTP redirects, and pages work
/// without JavaScript. The pages are small and their data is a few indexed
/// queries, so streaming would buy nothing.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title formatter=|page: String| if page.is_empty() { "Portcullis".to_string() } else { format!("{page} · Portcullis") } />
        <Router>
            <AuthProvider>
                <SessionWatcher />
                <LiveSignOut />
                <a class="skip-link" href="#main">"Skip to content"</a>
                <Header />
                <main class="page" id="main">
                    <Routes fallback=NotFoundPage>
                        <Route path=path!("/") view=HomePage ssr=SsrMode::Async />
                        <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async />
                        <Route path=path!("/login/verify") view=VerifySignInPage ssr=SsrMode::Async />
                        <Route path=path!("/register") view=RegisterPage ssr=SsrMode::Async />
                        <Route path=path!("/account") view=AccountPage ssr=SsrMode::Async />
                        <Route path=path!("/account/recovery-codes") view=RecoveryCodesPage ssr=SsrMode::Async />
                        <Route path=path!("/forgot-password") view=ForgotPasswordPage ssr=SsrMode::Async />
                        <Route path=path!("/reset-password") view=ResetPasswordPage ssr=SsrMode::Async />
                        <Route path=path!("/verify-email") view=VerifyEmailPage ssr=SsrMode::Async />
                        <Route path=path!("/confirm-email") view=ConfirmEmailPage ssr=SsrMode::Async />
                    </Routes>
                </main>
            </AuthProvider>
        </Router>
    }
}
