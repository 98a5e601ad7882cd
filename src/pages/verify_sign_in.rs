//! `/login/verify`: the second step of signing in to an account with
//! two-factor sign-in. The pending sign-in travels in an HttpOnly cookie the
//! password step set; nothing here is a session until the code is right.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use crate::{
    auth::{ErrorCode, Notice, VerifySignIn},
    components::{
        Field, FormAlert, QueryNotice, SubmitButton, field_error, general_error,
        go_on_after_sign_in, next_from_query,
    },
    pages::login::{LeaveIfSignedIn, PasskeySignIn},
};

#[component]
pub fn VerifySignInPage() -> impl IntoView {
    let next = next_from_query();
    let action = ServerAction::<VerifySignIn>::new();
    go_on_after_sign_in(action, next);
    let expired = Signal::derive(move || {
        action
            .value()
            .with(|value| matches!(value, Some(Err(error)) if error.code == ErrorCode::MfaExpired))
    });
    // With JavaScript, phones show a number pad for app codes, and a
    // recovery code (letters) is one click away. Without it the field takes
    // either as text.
    let (interactive, set_interactive) = signal(false);
    Effect::new(move |_| set_interactive.set(true));
    let (recovery, set_recovery) = signal(false);
    let inputmode = Signal::derive(move || {
        if interactive.get() && !recovery.get() {
            "numeric"
        } else {
            "text"
        }
    });

    view! {
        <Title text="Two-factor sign-in" />
        <LeaveIfSignedIn next />
        <section class="card auth-card" aria-labelledby="verify-title">
            <h1 id="verify-title">"Enter your code"</h1>
            <QueryNotice />
            <p class="lede">
                "Open your authenticator app and enter the 6-digit code it shows for Portcullis. \
                 Lost the app? Enter one of your recovery codes instead."
            </p>
            <ActionForm action=action attr:class="form">
                <input type="hidden" name="next" value=move || next.get().unwrap_or_default() />
                <FormAlert error=general_error(action, &["code"]) />
                <Field
                    label="Code"
                    name="code"
                    autocomplete="one-time-code"
                    inputmode
                    hint="6 digits from the app, or a recovery code like abcde-fghjk."
                    error=field_error(action, "code")
                />
                <SubmitButton pending=action.pending() label="Verify" pending_label="Verifying…" />
            </ActionForm>
            <Show when=move || interactive.get() && !recovery.get()>
                <p class="switch">
                    <button type="button" class="link" on:click=move |_| set_recovery.set(true)>
                        "Use a recovery code"
                    </button>
                </p>
            </Show>
            <PasskeySignIn next second_step=true />
            <Show when=move || expired.get()>
                <p class="switch"><A href=Notice::SignInExpired.url()>"Sign in again"</A></p>
            </Show>
            <p class="switch"><A href="/login">"Cancel and sign in as someone else"</A></p>
        </section>
    }
}
