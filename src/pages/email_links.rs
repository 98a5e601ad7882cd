//! The pages emailed address links open: `/verify-email` (confirm the
//! account's address) and `/confirm-email` (confirm a new one). The link's
//! token arrives in a cookie (the server moved it out of the URL before
//! this rendered); the page asks for one click, a form post, so that a mail
//! scanner fetching the link confirms nothing.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::A, hooks::use_navigate};

use crate::{
    auth::{ConfirmEmailChange, ErrorCode, Notice, VerifyEmail},
    components::{AuthContext, FormAlert, SubmitButton, general_error},
};

#[component]
pub fn VerifyEmailPage() -> impl IntoView {
    let action = ServerAction::<VerifyEmail>::new();
    let auth = AuthContext::expect();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(to)) = action.value().get() {
            // The account page shows the address as confirmed now.
            auth.refetch();
            navigate(&to, Default::default());
        }
    });
    let link_failed = Signal::derive(move || {
        action.value().with(
            |value| matches!(value, Some(Err(error)) if error.code == ErrorCode::InvalidToken),
        )
    });

    view! {
        <Title text="Confirm your email address" />
        <section class="card auth-card" aria-labelledby="verify-title">
            <h1 id="verify-title">"Confirm your email address"</h1>
            <p>"Confirm that this address is yours to finish setting up your account."</p>
            <ActionForm action=action attr:class="form">
                <FormAlert error=general_error(action, &[]) />
                <Show when=move || link_failed.get()>
                    <p>"Sign in and ask for a new link from your account page, or from the sign-in page."</p>
                </Show>
                <SubmitButton pending=action.pending() label="Confirm my email address" pending_label="Confirming…" />
            </ActionForm>
            <p class="switch"><A href="/login">"Sign in"</A></p>
        </section>
    }
}

#[component]
pub fn ConfirmEmailPage() -> impl IntoView {
    let action = ServerAction::<ConfirmEmailChange>::new();
    let auth = AuthContext::expect();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(to)) = action.value().get() {
            if to == Notice::AddressChanged.url() {
                // If this browser was signed in, it was one of the others.
                auth.session_may_have_ended();
            } else {
                auth.refetch();
            }
            navigate(&to, Default::default());
        }
    });

    view! {
        <Title text="Confirm your new email address" />
        <section class="card auth-card" aria-labelledby="confirm-email-title">
            <h1 id="confirm-email-title">"Confirm your new email address"</h1>
            <p>"Your account moves to this address, and every other device is signed out."</p>
            <ActionForm action=action attr:class="form">
                <FormAlert error=general_error(action, &[]) />
                <SubmitButton pending=action.pending() label="Confirm my new address" pending_label="Confirming…" />
            </ActionForm>
            <p class="switch"><A href="/account">"Back to your account"</A></p>
        </section>
    }
}
