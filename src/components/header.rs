//! The top bar: the brand, and who is signed in with a Sign out button.

use leptos::prelude::*;
use leptos_router::{components::A, hooks::use_navigate};

use super::{AuthContext, SubmitButton};
use crate::auth::{Logout, LogoutScope, Notice};

#[component]
pub fn Header() -> impl IntoView {
    let auth = AuthContext::expect();
    view! {
        <header class="topbar">
            <div class="topbar-inner">
                <A href="/" attr:class="brand">
                    <span class="brand-mark" aria-hidden="true"></span>
                    "Portcullis"
                </A>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        match auth.user().await {
                            Some(user) => view! {
                                <nav class="topnav" aria-label="Account">
                                    <span class="who" data-testid="signed-in-email">{user.email}</span>
                                    <A href="/account">"Account"</A>
                                    <SignOutButton />
                                </nav>
                            }.into_any(),
                            None => view! {
                                <nav class="topnav" aria-label="Account">
                                    <A href="/login">"Sign in"</A>
                                    <A href="/register" attr:class="button small">"Create account"</A>
                                </nav>
                            }.into_any(),
                        }
                    })}
                </Transition>
            </div>
        </header>
    }
}

/// A form posting to `logout`. Without JavaScript the server answers with a
/// 303 to the login page; with it, this tab navigates there itself and the
/// other tabs follow.
#[component]
pub fn SignOutButton(
    #[prop(optional)] scope: LogoutScope,
    #[prop(default = "Sign out")] label: &'static str,
    #[prop(default = "button ghost small")] class: &'static str,
    /// Called after a successful `Others` logout (the page stays).
    #[prop(optional, into)]
    on_done: Option<Callback<()>>,
) -> impl IntoView {
    let auth = AuthContext::expect();
    let action = ServerAction::<Logout>::new();
    let navigate = use_navigate();
    if scope.ends_current() {
        // Stop listening for this session's end before asking for it.
        Effect::new(move |_| {
            if action.pending().get() {
                auth.leaving(true);
            }
        });
    }
    Effect::new(move |_| match action.value().get() {
        Some(Ok(())) if scope.ends_current() => {
            auth.signed_out(&navigate, Notice::SignedOut.url());
        }
        Some(Ok(())) => {
            if let Some(done) = on_done {
                done.run(());
            }
        }
        Some(Err(error)) => {
            auth.leaving(false);
            auth.notice_session_end(&error);
        }
        None => {}
    });
    view! {
        <ActionForm action=action attr:class="inline-form">
            <input type="hidden" name="scope" value=scope.as_str() />
            <SubmitButton pending=action.pending() label pending_label="Signing out…" class />
        </ActionForm>
    }
}
