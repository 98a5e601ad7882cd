use leptos::{html::Form, prelude::*};
use leptos_meta::Title;
use leptos_router::hooks::use_navigate;

use super::{passkeys::PasskeysSection, two_factor::TwoFactorSection};
use crate::{
    auth::{
        ActivityEntry, ChangeEmail, ChangePassword, DeviceSession, LogoutScope, Notice,
        ResendVerification, RevokeSession, SessionUser, list_sessions, recent_activity,
    },
    components::{
        AuthContext, Field, FormAlert, NewPasswordField, NoticeBanner, QueryNotice, RequireAuth,
        SignOutButton, SubmitButton, field_error, general_error,
    },
};

#[component]
pub fn AccountPage() -> impl IntoView {
    view! {
        <Title text="Account" />
        <RequireAuth view=|user| view! { <Account user /> } />
    }
}

#[component]
fn Account(user: SessionUser) -> impl IntoView {
    let auth = AuthContext::expect();
    let navigate = use_navigate();
    let version = RwSignal::new(0u64);
    let reload = move || version.update(|v| *v += 1);
    let sessions = Resource::new_blocking(move || version.get(), |_| list_sessions());
    let activity = Resource::new_blocking(move || version.get(), |_| recent_activity());
    let (notice, set_notice) = signal(None::<&'static str>);

    let change = ServerAction::<ChangePassword>::new();
    let change_form = NodeRef::<Form>::new();
    Effect::new(move |_| match change.value().get() {
        Some(Ok(())) => {
            set_notice.set(Some(
                "Password changed. Your other devices have been signed out.",
            ));
            if let Some(form) = change_form.get() {
                form.reset();
            }
            reload();
        }
        Some(Err(error)) => {
            auth.notice_session_end(&error);
        }
        None => {}
    });

    let revoke = ServerAction::<RevokeSession>::new();
    Effect::new(move |_| match revoke.value().get() {
        Some(Ok(true)) => {
            auth.signed_out(&navigate, Notice::SignedOut.url());
        }
        Some(Ok(false)) => {
            set_notice.set(Some(Notice::SessionRevoked.text()));
            reload();
        }
        Some(Err(error)) => {
            auth.notice_session_end(&error);
        }
        None => {}
    });
    let others_done = Callback::new(move |()| {
        set_notice.set(Some("All your other devices have been signed out."));
        reload();
    });

    view! {
        <div class="stack">
            <section class="card" aria-labelledby="account-title">
                <h1 id="account-title">"Account"</h1>
                <p class="lede">"Signed in as " <strong>{user.email.clone()}</strong></p>
                <QueryNotice />
                <NoticeBanner text=notice />
            </section>

            <EmailSection user set_notice />

            <TwoFactorSection set_notice />

            <PasskeysSection set_notice />

            <section class="card" aria-labelledby="password-title">
                <h2 id="password-title">"Change password"</h2>
                <p class="muted">"Changing your password signs out every other device."</p>
                <ActionForm action=change node_ref=change_form attr:class="form">
                    <FormAlert error=general_error(change, &["current_password", "new_password", "new_password_confirm"]) />
                    <Field label="Current password" name="current_password" kind="password" autocomplete="current-password" error=field_error(change, "current_password") />
                    <NewPasswordField
                        label="New password"
                        name="new_password"
                        advice="Different from the current one."
                        error=field_error(change, "new_password")
                    />
                    <Field label="Confirm new password" name="new_password_confirm" kind="password" autocomplete="new-password" error=field_error(change, "new_password_confirm") />
                    <SubmitButton pending=change.pending() label="Change password" pending_label="Changing password…" />
                </ActionForm>
            </section>

            <section class="card" aria-labelledby="devices-title">
                <h2 id="devices-title">"Signed-in devices"</h2>
                <FormAlert error=general_error(revoke, &[]) />
                <Transition fallback=|| view! { <p class="muted">"Loading devices…"</p> }>
                    {move || Suspend::new(async move {
                        match sessions.await {
                            Ok(overview) => {
                                let reauth = overview.reauth_required;
                                view! {
                                    <ul class="sessions">
                                        {overview.sessions.into_iter().map(|session| view! { <SessionRow session reauth revoke /> }).collect_view()}
                                    </ul>
                                }.into_any()
                            }
                            Err(error) => {
                                auth.notice_session_end(&error);
                                view! { <FormAlert error=Signal::stored(Some(error)) /> }.into_any()
                            }
                        }
                    })}
                </Transition>
                <div class="actions">
                    <SignOutButton scope=LogoutScope::Others label="Sign out of all other devices" class="button secondary" on_done=others_done />
                    <SignOutButton scope=LogoutScope::Global label="Sign out everywhere" class="button danger" />
                </div>
            </section>

            <section class="card" aria-labelledby="activity-title">
                <h2 id="activity-title">"Recent activity"</h2>
                <Transition fallback=|| view! { <p class="muted">"Loading activity…"</p> }>
                    {move || Suspend::new(async move {
                        match activity.await {
                            Ok(entries) => view! { <ActivityList entries /> }.into_any(),
                            Err(error) => view! { <FormAlert error=Signal::stored(Some(error)) /> }.into_any(),
                        }
                    })}
                </Transition>
            </section>
        </div>
    }
}

/// The address, whether it is confirmed (with a way to get a new link),
/// and changing it.
#[component]
fn EmailSection(user: SessionUser, set_notice: WriteSignal<Option<&'static str>>) -> impl IntoView {
    let auth = AuthContext::expect();
    let resend = ServerAction::<ResendVerification>::new();
    Effect::new(move |_| match resend.value().get() {
        Some(Ok(())) => set_notice.set(Some(Notice::VerificationSent.text())),
        Some(Err(error)) => {
            auth.notice_session_end(&error);
        }
        None => {}
    });
    let change = ServerAction::<ChangeEmail>::new();
    let change_form = NodeRef::<Form>::new();
    Effect::new(move |_| match change.value().get() {
        Some(Ok(())) => {
            set_notice.set(Some(Notice::EmailChangeSent.text()));
            if let Some(form) = change_form.get() {
                form.reset();
            }
        }
        Some(Err(error)) => {
            auth.notice_session_end(&error);
        }
        None => {}
    });
    let verified = user.email_verified;

    view! {
        <section class="card" aria-labelledby="email-title">
            <h2 id="email-title">"Email address"</h2>
            <p>
                <strong>{user.email}</strong> " "
                <span class="badge" class:warning=!verified data-testid="email-status">
                    {if verified { "Verified" } else { "Not verified" }}
                </span>
            </p>
            {(!verified).then(|| view! {
                <ActionForm action=resend attr:class="inline-form">
                    <FormAlert error=general_error(resend, &[]) />
                    <p class="muted">"Confirm your address with the link we mailed you. No mail?"</p>
                    <SubmitButton pending=resend.pending() label="Send the link again" pending_label="Sending…" class="button secondary small" />
                </ActionForm>
            })}
            <h3>"Change email address"</h3>
            <p class="muted">"We send a link to the new address; it changes when you follow it, and every other device is signed out."</p>
            <ActionForm action=change node_ref=change_form attr:class="form">
                <FormAlert error=general_error(change, &["new_email", "current_password"]) />
                <Field label="New email address" name="new_email" kind="email" autocomplete="email" error=field_error(change, "new_email") />
                <Field label="Your password" name="current_password" kind="password" autocomplete="current-password" form="email" error=field_error(change, "current_password") />
                <SubmitButton pending=change.pending() label="Change email address" pending_label="Sending link…" />
            </ActionForm>
        </section>
    }
}

#[component]
fn SessionRow(
    session: DeviceSession,
    reauth: bool,
    revoke: ServerAction<RevokeSession>,
) -> impl IntoView {
    let DeviceSession {
        id,
        device,
        ip,
        created,
        last_used,
        current,
    } = session;
    let ip = ip.unwrap_or_else(|| "unknown address".into());
    view! {
        <li class="session" class:current=current data-testid="session">
            <div class="session-main">
                <p class="device">
                    {device}
                    {current.then(|| view! { <span class="badge">"This device"</span> })}
                </p>
                <p class="meta">
                    {ip} " · signed in " <time datetime=created.iso>{created.display}</time>
                    " · last active " <time datetime=last_used.iso>{last_used.display}</time>
                </p>
            </div>
            {if current {
                view! { <SignOutButton /> }.into_any()
            } else {
                view! {
                    <ActionForm action=revoke attr:class="revoke-form">
                        <input type="hidden" name="session_id" value=id />
                        {reauth.then(|| view! {
                            <input
                                type="password"
                                name="password"
                                class="compact"
                                placeholder="Your password"
                                aria-label="Your password, to confirm"
                                autocomplete="current-password"
                                required=true
                            />
                        })}
                        <SubmitButton pending=revoke.pending() label="Revoke" pending_label="Revoking…" class="button danger small" />
                    </ActionForm>
                }.into_any()
            }}
        </li>
    }
}

#[component]
fn ActivityList(entries: Vec<ActivityEntry>) -> impl IntoView {
    if entries.is_empty() {
        return view! { <p class="muted">"Nothing yet."</p> }.into_any();
    }
    view! {
        <ul class="activity">
            {entries.into_iter().map(|entry| {
                let context = [entry.device, entry.ip].into_iter().flatten().collect::<Vec<_>>().join(" · ");
                view! {
                    <li>
                        <span class="what">{entry.description}</span>
                        <span class="meta"><time datetime=entry.at.iso>{entry.at.display}</time> " · " {context}</span>
                    </li>
                }
            }).collect_view()}
        </ul>
    }.into_any()
}
