//! The account page's "Two-factor sign-in" section: set up an authenticator
//! app (a QR code drawn by the server, and the key as text), confirm it with
//! a code, and, once it is on, make new recovery codes or turn it off.

use leptos::prelude::*;
use leptos_router::{NavigateOptions, hooks::use_navigate};

use crate::{
    auth::{
        ConfirmTotp, DisableTotp, NewRecoveryCodes, Notice, RECOVERY_CODES_PATH, StartTotpSetup,
        TwoFactorOverview, two_factor_status,
    },
    components::{AuthContext, Field, FormAlert, SubmitButton, field_error, general_error},
};

#[component]
pub fn TwoFactorSection(set_notice: WriteSignal<Option<&'static str>>) -> impl IntoView {
    let auth = AuthContext::expect();
    let navigate = use_navigate();
    let version = RwSignal::new(0u64);
    let overview = Resource::new_blocking(move || version.get(), |_| two_factor_status());
    let start = ServerAction::<StartTotpSetup>::new();
    let confirm = ServerAction::<ConfirmTotp>::new();
    let regenerate = ServerAction::<NewRecoveryCodes>::new();
    let disable = ServerAction::<DisableTotp>::new();

    Effect::new(move |_| {
        if start.value().with(|value| matches!(value, Some(Ok(())))) {
            version.update(|v| *v += 1);
        }
    });
    Effect::new(move |_| {
        let shown = confirm.value().with(|value| matches!(value, Some(Ok(()))))
            || regenerate
                .value()
                .with(|value| matches!(value, Some(Ok(()))));
        if shown {
            navigate(RECOVERY_CODES_PATH, NavigateOptions::default());
        }
    });
    Effect::new(move |_| {
        if disable.value().with(|value| matches!(value, Some(Ok(())))) {
            set_notice.set(Some(Notice::TwoFactorOff.text()));
            version.update(|v| *v += 1);
        }
    });
    Effect::new(move |_| {
        for error in [
            start.value().get().and_then(Result::err),
            confirm.value().get().and_then(Result::err),
            regenerate.value().get().and_then(Result::err),
            disable.value().get().and_then(Result::err),
        ]
        .into_iter()
        .flatten()
        {
            auth.notice_session_end(&error);
        }
    });

    view! {
        <section class="card" id="two-factor" aria-labelledby="two-factor-title">
            <h2 id="two-factor-title">"Two-factor sign-in"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match overview.await {
                        Ok(overview) => view! { <TwoFactorState overview start confirm regenerate disable /> }.into_any(),
                        Err(error) => {
                            auth.notice_session_end(&error);
                            view! { <FormAlert error=Signal::stored(Some(error)) /> }.into_any()
                        }
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn TwoFactorState(
    overview: TwoFactorOverview,
    start: ServerAction<StartTotpSetup>,
    confirm: ServerAction<ConfirmTotp>,
    regenerate: ServerAction<NewRecoveryCodes>,
    disable: ServerAction<DisableTotp>,
) -> impl IntoView {
    if overview.totp {
        let left = overview.recovery_codes_left;
        return view! {
            <p class="status ok">"On: signing in asks for a code from your authenticator app."</p>
            <p data-testid="recovery-codes-left">
                {format!("{left} unused recovery code{} left.", if left == 1 { "" } else { "s" })}
            </p>
            <h3>"New recovery codes"</h3>
            <p class="muted">"The old codes stop working."</p>
            <ActionForm action=regenerate attr:class="form" attr:id="regenerate-form">
                <FormAlert error=general_error(regenerate, &["current_password", "code"]) />
                <Field label="Password" name="current_password" kind="password" autocomplete="current-password" form="regenerate" error=field_error(regenerate, "current_password") />
                <Field label="Code from your app" name="code" autocomplete="one-time-code" inputmode="numeric" form="regenerate" error=field_error(regenerate, "code") />
                <SubmitButton pending=regenerate.pending() label="Make new recovery codes" pending_label="Making codes…" class="button secondary" />
            </ActionForm>
            <h3>"Turn off"</h3>
            <p class="muted">"Signing in will need only your password, and your other devices are signed out."</p>
            <ActionForm action=disable attr:class="form" attr:id="disable-form">
                <FormAlert error=general_error(disable, &["current_password", "code"]) />
                <Field label="Password" name="current_password" kind="password" autocomplete="current-password" form="disable" error=field_error(disable, "current_password") />
                <Field label="Code from your app, or a recovery code" name="code" autocomplete="one-time-code" form="disable" error=field_error(disable, "code") />
                <SubmitButton pending=disable.pending() label="Turn off two-factor sign-in" pending_label="Turning off…" class="button danger" />
            </ActionForm>
        }
        .into_any();
    }
    if let Some(setup) = overview.setup {
        return view! {
            <p>"Scan this QR code with your authenticator app (such as Aegis, Google Authenticator or 1Password), then enter the code it shows."</p>
            <div class="qr" role="img" aria-label="QR code of the authenticator key" inner_html=setup.qr_svg></div>
            <p>"Can't scan it? Type this key into the app:"</p>
            <p><code class="secret" data-testid="totp-secret">{setup.secret}</code></p>
            <ActionForm action=confirm attr:class="form" attr:id="confirm-form">
                <FormAlert error=general_error(confirm, &["code"]) />
                <Field label="Code from your app" name="code" autocomplete="one-time-code" inputmode="numeric" form="confirm" error=field_error(confirm, "code") />
                <SubmitButton pending=confirm.pending() label="Turn on two-factor sign-in" pending_label="Checking…" />
            </ActionForm>
        }
        .into_any();
    }
    view! {
        <p class="muted">
            "Off. With two-factor sign-in, signing in also asks for a code from an authenticator app on your phone, \
             so your password alone is not enough."
        </p>
        <ActionForm action=start attr:class="form" attr:id="setup-form">
            <FormAlert error=general_error(start, &["password"]) />
            {overview.reauth_required.then(|| view! {
                <Field label="Password" name="password" kind="password" autocomplete="current-password" form="setup" hint="Enter your password to confirm it is you." error=field_error(start, "password") />
            })}
            <SubmitButton pending=start.pending() label="Set up an authenticator app" pending_label="Setting up…" />
        </ActionForm>
    }
    .into_any()
}
