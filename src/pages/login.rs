use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{
    components::{A, Redirect},
    hooks::use_navigate,
};

use crate::{
    auth::{
        AuthStatus, ErrorCode, Login, Notice, ResendVerification, passkey_second_step_options,
        passkey_sign_in_options, sign_in_with_passkey, verify_with_passkey,
    },
    components::{
        AuthContext, Field, FormAlert, QueryNotice, SubmitButton, encode_query_value, field_error,
        general_error, get_passkey, go_on_after_sign_in, next_from_query, passkeys_supported,
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
            <PasskeySignIn next />
            <p class="switch"><A href="/forgot-password">"Forgot your password?"</A></p>
            <p class="switch">"New to Portcullis? " <A href=register_href>"Create an account"</A></p>
        </section>
    }
}

/// "Sign in with a passkey": no email, no password; or, with `second_step`,
/// a passkey in place of the code for this browser's pending sign-in.
/// Offered only once the page is interactive in a browser that can do
/// WebAuthn (progressive enhancement: without JavaScript the button is
/// simply not there).
#[component]
pub fn PasskeySignIn(
    next: Memo<Option<String>>,
    #[prop(optional)] second_step: bool,
) -> impl IntoView {
    let auth = AuthContext::expect();
    let navigate = use_navigate();
    let (supported, set_supported) = signal(false);
    Effect::new(move |_| set_supported.set(passkeys_supported()));
    let (error, set_error) = signal(None::<String>);
    let sign_in = Action::new_local(move |_: &()| async move {
        let prompt = match second_step {
            true => passkey_second_step_options().await,
            false => passkey_sign_in_options().await,
        }
        .map_err(|e| e.message)?;
        let answer = get_passkey(&prompt.options).await?;
        match second_step {
            true => verify_with_passkey(prompt.ceremony, answer).await,
            false => sign_in_with_passkey(prompt.ceremony, answer).await,
        }
        .map_err(|e| e.message)
    });
    let label = if second_step {
        "Use a passkey instead"
    } else {
        "Sign in with a passkey"
    };
    Effect::new(move |_| match sign_in.value().get() {
        Some(Ok(_)) => {
            auth.signed_in();
            navigate(
                &next.get_untracked().unwrap_or_else(|| "/".into()),
                Default::default(),
            );
        }
        Some(Err(message)) => set_error.set(Some(message)),
        None => {}
    });
    view! {
        <Show when=move || supported.get()>
            <div class="form passkey-sign-in">
                <button
                    type="button"
                    class="button secondary"
                    disabled=move || sign_in.pending().get()
                    on:click=move |_| {
                        set_error.set(None);
                        sign_in.dispatch(());
                    }
                >
                    {move || if sign_in.pending().get() { "Waiting for your passkey…" } else { label }}
                </button>
                <Show when=move || error.get().is_some()>
                    <p class="field-error" role="alert">{move || error.get()}</p>
                </Show>
            </div>
        </Show>
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
