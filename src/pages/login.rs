use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{
    components::{A, Redirect},
    hooks::use_navigate,
};

use crate::{
    auth::{AuthStatus, ErrorCode, Login, Notice, ResendVerification},
    components::{
        AuthContext, Field, FormAlert, QueryNotice, SubmitButton, encode_query_value, field_error,
        general_error, go_on_after_sign_in, next_from_query,
    },
};

#[component]
pub fn LoginPage() -> impl IntoView {
    let next = next_from_query();
    let action = ServerAction::<Login>::new();
    go_on_after_sign_in(action, next);
    let not_verified = Signal::derive(move || {
        action.value().with(
            |value| matches!(value, Some(Err(error)) if error.code == ErrorCode::EmailNotVerified),
        )
    });
    let resend = ServerAction::<ResendVerification>::new();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if resend.value().with(|value| matches!(value, Some(Ok(())))) {
            navigate(Notice::VerificationResent.url(), Default::default());
        }
    });
    let register_href = move || match next.get() {
        Some(next) => format!("/register?next={}", encode_query_value(&next)),
        None => "/register".into(),
    };

    view! {
        <Title text="Sign in" />
        <LeaveIfSignedIn next />
        <section class="card auth-card" aria-labelledby="login-title">
            <h1 id="login-title">"Sign in"</h1>
            <QueryNotice />
            <ActionForm action=action attr:class="form">
                <input type="hidden" name="next" value=move || next.get().unwrap_or_default() />
                <FormAlert error=general_error(action, &["email", "password"]) />
                <Field label="Email" name="email" kind="email" autocomplete="username" error=field_error(action, "email") />
                <Field label="Password" name="password" kind="password" autocomplete="current-password" error=field_error(action, "password") />
                <SubmitButton pending=action.pending() label="Sign in" pending_label="Signing in…" />
            </ActionForm>
            <Show when=move || not_verified.get()>
                <ActionForm action=resend attr:class="form">
                    <FormAlert error=general_error(resend, &["email"]) />
                    <Field label="Email for a new link" name="email" kind="email" autocomplete="username" form="resend" error=field_error(resend, "email") />
                    <SubmitButton pending=resend.pending() label="Send the link again" pending_label="Sending…" class="button secondary" />
                </ActionForm>
            </Show>
            <p class="switch"><A href="/forgot-password">"Forgot your password?"</A></p>
            <p class="switch">"New to Portcullis? " <A href=register_href>"Create an account"</A></p>
        </section>
    }
}

/// Someone already signed in has no business on the login page: send them on.
#[component]
pub fn LeaveIfSignedIn(next: Memo<Option<String>>) -> impl IntoView {
    let auth = AuthContext::expect();
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                matches!(auth.status().await, Ok(AuthStatus::SignedIn(_)))
                    .then(|| view! { <Redirect path=next.get_untracked().unwrap_or_else(|| "/".into()) /> })
            })}
        </Transition>
    }
}
