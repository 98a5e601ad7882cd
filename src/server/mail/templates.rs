//! The messages, each with a plain-text and an HTML part and a subject that
//! says what it is about. Every security notice says what to do if it
//! wasn't you.

use std::time::Duration;

use crate::server::db::NewMail;

/// "Reset your password": the link, how long it works, and reassurance for
/// someone who did not ask.
pub fn password_reset(recipient: &str, link: &str, ttl: Duration) -> NewMail {
    let ttl = human_duration(ttl);
    let text = format!(
        "Someone (hopefully you) asked to reset the password of your Portcullis account.\n\n\
         To choose a new password, open this link within {ttl}:\n\n{link}\n\n\
         The link works once. Resetting your password signs you out on every device.\n\n\
         If you did not ask for this, ignore this message: your password stays as it is.\n"
    );
    let html = page(
        "Reset your password",
        &format!(
            "<p>Someone (hopefully you) asked to reset the password of your Portcullis account.</p>\
             <p>To choose a new password, open this link within {ttl}:</p>\
             <p><a href=\"{href}\">Choose a new password</a></p>\
             <p style=\"font-size:13px;color:#555\">Or paste this address into your browser: {href}</p>\
             <p>The link works once. Resetting your password signs you out on every device.</p>\
             <p>If you did not ask for this, ignore this message: your password stays as it is.</p>",
            ttl = escape(&ttl),
            href = escape(link),
        ),
    );
    mail(recipient, "Reset your Portcullis password", text, html)
}

/// "Your password was changed", after a change or a reset.
pub fn password_changed(recipient: &str, forgot_link: &str, signed_out: &str) -> NewMail {
    let text = format!(
        "The password of your Portcullis account was just changed. {signed_out}\n\n\
         If this wasn't you, someone else may have your password or access to your email: \
         reset your password at once here:\n\n{forgot_link}\n"
    );
    let html = page(
        "Your password was changed",
        &format!(
            "<p>The password of your Portcullis account was just changed. {signed_out}</p>\
             <p><strong>If this wasn't you</strong>, someone else may have your password or \
             access to your email: <a href=\"{href}\">reset your password at once</a>.</p>",
            signed_out = escape(signed_out),
            href = escape(forgot_link),
        ),
    );
    mail(
        recipient,
        "Your Portcullis password was changed",
        text,
        html,
    )
}

/// A replayed refresh token ended a session: someone may hold a copy of it.
pub fn session_stolen(recipient: &str, forgot_link: &str) -> NewMail {
    let text = format!(
        "One of your Portcullis sessions presented a sign-in token that had already been used. \
         That happens when someone copied the token, so we signed that session out.\n\n\
         If you just saw a sign-in page you did not expect, sign in again. \
         If this wasn't you, or it keeps happening, reset your password and sign out everywhere:\n\n\
         {forgot_link}\n"
    );
    let html = page(
        "We signed a session out",
        &format!(
            "<p>One of your Portcullis sessions presented a sign-in token that had already been used. \
             That happens when someone copied the token, so we signed that session out.</p>\
             <p>If you just saw a sign-in page you did not expect, sign in again. \
             <strong>If this wasn't you</strong>, or it keeps happening, \
             <a href=\"{href}\">reset your password</a> and sign out everywhere.</p>",
            href = escape(forgot_link),
        ),
    );
    mail(recipient, "We signed out a Portcullis session", text, html)
}

/// What changed about an account's second factor, for [`second_factor`].
#[derive(Clone, Copy, Debug)]
pub enum FactorChange {
    Enabled,
    Disabled,
    /// A recovery code was used to sign in; how many are left.
    RecoveryCodeUsed {
        left: i64,
    },
}

/// A security notice about the account's second factor.
pub fn second_factor(recipient: &str, change: FactorChange, forgot_link: &str) -> NewMail {
    let (subject, said) = match change {
        FactorChange::Enabled => (
            "Two-factor sign-in is on for your Portcullis account".to_string(),
            "Two-factor sign-in was just turned on for your Portcullis account: signing in \
             now also asks for a code from your authenticator app."
                .to_string(),
        ),
        FactorChange::Disabled => (
            "Two-factor sign-in is off for your Portcullis account".to_string(),
            "Two-factor sign-in was just turned off for your Portcullis account, and your \
             other devices were signed out. Signing in now needs only the password."
                .to_string(),
        ),
        FactorChange::RecoveryCodeUsed { left } => (
            "A recovery code was used to sign in to your Portcullis account".to_string(),
            format!(
                "Someone signed in to your Portcullis account with one of its recovery codes. \
                 {left} unused recovery codes are left."
            ),
        ),
    };
    let text = format!(
        "{said}\n\nIf this wasn't you, someone else has your password: reset it at once here, \
         which signs out every device:\n\n{forgot_link}\n"
    );
    let html = page(
        &subject,
        &format!(
            "<p>{said}</p><p><strong>If this wasn't you</strong>, someone else has your password: \
             <a href=\"{href}\">reset it at once</a>, which signs out every device.</p>",
            said = escape(&said),
            href = escape(forgot_link),
        ),
    );
    mail(recipient, &subject, text, html)
}

/// A passkey was added to the account, or removed from it.
pub fn passkey_changed(recipient: &str, name: &str, added: bool, forgot_link: &str) -> NewMail {
    let (subject, said) = if added {
        (
            "A passkey was added to your Portcullis account",
            format!(
                "A passkey named \"{name}\" was just added to your Portcullis account: it signs in without a password."
            ),
        )
    } else {
        (
            "A passkey was removed from your Portcullis account",
            format!("The passkey named \"{name}\" was just removed from your Portcullis account."),
        )
    };
    let text = format!(
        "{said}\n\nIf this wasn't you, someone else is signed in to your account: reset your \
         password at once here, which signs out every device:\n\n{forgot_link}\n"
    );
    let html = page(
        subject,
        &format!(
            "<p>{said}</p><p><strong>If this wasn't you</strong>, someone else is signed in to your \
             account: <a href=\"{href}\">reset your password at once</a>, which signs out every device.</p>",
            said = escape(&said),
            href = escape(forgot_link),
        ),
    );
    mail(recipient, subject, text, html)
}

/// "Confirm your email address", after registering: the link and how long
/// it works.
pub fn verify_email(recipient: &str, link: &str, ttl: Duration) -> NewMail {
    let ttl = human_duration(ttl);
    let text = format!(
        "Welcome to Portcullis. To confirm that this address is yours, open this link \
         within {ttl}:\n\n{link}\n\n\
         If you did not create an account, ignore this message: nothing will be done \
         with this address.\n"
    );
    let html = page(
        "Confirm your email address",
        &format!(
            "<p>Welcome to Portcullis. To confirm that this address is yours, open this link \
             within {ttl}:</p>\
             <p><a href=\"{href}\">Confirm my email address</a></p>\
             <p style=\"font-size:13px;color:#555\">Or paste this address into your browser: {href}</p>\
             <p>If you did not create an account, ignore this message: nothing will be done \
             with this address.</p>",
            ttl = escape(&ttl),
            href = escape(link),
        ),
    );
    mail(
        recipient,
        "Confirm your email address for Portcullis",
        text,
        html,
    )
}

/// Someone tried to register this address, or to move another account to
/// it, and it already has an account: told to its owner instead of to the
/// person who tried (who is answered as if nothing was there).
pub fn address_in_use(recipient: &str, forgot_link: &str) -> NewMail {
    let text = format!(
        "Someone just tried to create a Portcullis account with this email address, \
         or to move another account to it. It already has an account, so nothing changed.\n\n\
         If it was you and you forgot your password, you can reset it here:\n\n{forgot_link}\n\n\
         If it wasn't you, you can ignore this message: your account is unchanged.\n"
    );
    let html = page(
        "This address already has an account",
        &format!(
            "<p>Someone just tried to create a Portcullis account with this email address, \
             or to move another account to it. It already has an account, so nothing changed.</p>\
             <p>If it was you and you forgot your password, \
             <a href=\"{href}\">you can reset it</a>.</p>\
             <p>If it wasn't you, you can ignore this message: your account is unchanged.</p>",
            href = escape(forgot_link),
        ),
    );
    mail(
        recipient,
        "Someone tried to register with your email address",
        text,
        html,
    )
}

/// Sent to the new address of an email change: the change happens only when
/// its link is followed.
pub fn confirm_email_change(recipient: &str, link: &str, ttl: Duration) -> NewMail {
    let ttl = human_duration(ttl);
    let text = format!(
        "Someone (hopefully you) asked to use this address for their Portcullis account.\n\n\
         To confirm the change, open this link within {ttl}:\n\n{link}\n\n\
         Confirming signs the account out on every other device. \
         If you did not ask for this, ignore this message: nothing changes.\n"
    );
    let html = page(
        "Confirm your new email address",
        &format!(
            "<p>Someone (hopefully you) asked to use this address for their Portcullis account.</p>\
             <p>To confirm the change, open this link within {ttl}:</p>\
             <p><a href=\"{href}\">Confirm my new email address</a></p>\
             <p style=\"font-size:13px;color:#555\">Or paste this address into your browser: {href}</p>\
             <p>Confirming signs the account out on every other device. \
             If you did not ask for this, ignore this message: nothing changes.</p>",
            ttl = escape(&ttl),
            href = escape(link),
        ),
    );
    mail(
        recipient,
        "Confirm your new email address for Portcullis",
        text,
        html,
    )
}

/// Sent to the current address when a change to `new_address` is asked for,
/// with that address partly masked.
pub fn email_change_requested(recipient: &str, new_address: &str, forgot_link: &str) -> NewMail {
    let masked = mask_address(new_address);
    let text = format!(
        "Someone asked to change the email address of your Portcullis account to {masked}. \
         The change happens only when the link sent to that address is followed.\n\n\
         If this wasn't you, someone else has your password: reset it at once here, \
         which also cancels the change:\n\n{forgot_link}\n"
    );
    let html = page(
        "Your email address is about to change",
        &format!(
            "<p>Someone asked to change the email address of your Portcullis account to \
             <strong>{masked}</strong>. The change happens only when the link sent to that \
             address is followed.</p>\
             <p><strong>If this wasn't you</strong>, someone else has your password: \
             <a href=\"{href}\">reset it at once</a>, which also cancels the change.</p>",
            masked = escape(&masked),
            href = escape(forgot_link),
        ),
    );
    mail(
        recipient,
        "Your Portcullis email address is about to change",
        text,
        html,
    )
}

/// A sign-in from a kind of device (browser and system) this account had not
/// used before.
pub fn new_device_sign_in(
    recipient: &str,
    device: &str,
    ip: Option<&str>,
    when: &str,
    forgot_link: &str,
) -> NewMail {
    let from = ip.map(|ip| format!(" from {ip}")).unwrap_or_default();
    let text = format!(
        "Your Portcullis account was just signed in to on a new device: {device}{from}, at {when}.\n\n\
         If this was you, there is nothing to do.\n\n\
         If this wasn't you, someone has your password: reset it at once here, \
         which signs out every device:\n\n{forgot_link}\n"
    );
    let html = page(
        "New sign-in to your account",
        &format!(
            "<p>Your Portcullis account was just signed in to on a new device: \
             <strong>{device}</strong>{from}, at {when}.</p>\
             <p>If this was you, there is nothing to do.</p>\
             <p><strong>If this wasn't you</strong>, someone has your password: \
             <a href=\"{href}\">reset it at once</a>, which signs out every device.</p>",
            device = escape(device),
            from = escape(&from),
            when = escape(when),
            href = escape(forgot_link),
        ),
    );
    mail(
        recipient,
        "New sign-in to your Portcullis account",
        text,
        html,
    )
}

/// `jane.doe@example.com` as `j•••@e•••.com`: enough for its owner to
/// recognise, too little to learn it from.
pub fn mask_address(address: &str) -> String {
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    let (name, suffix) = domain.split_once('.').unwrap_or((domain, ""));
    let suffix = domain.rsplit_once('.').map_or(suffix, |(_, tld)| tld);
    let mut masked = format!("{}•••@{}•••", first(local), first(name));
    if !suffix.is_empty() {
        masked.push('.');
        masked.push_str(suffix);
    }
    masked
}

fn mail(recipient: &str, subject: &str, text_body: String, html_body: String) -> NewMail {
    NewMail {
        recipient: recipient.to_string(),
        subject: subject.to_string(),
        text_body,
        html_body,
    }
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:system-ui,sans-serif;line-height:1.5;color:#1b1f24;max-width:36em\">\
         <h1 style=\"font-size:20px\">{title}</h1>{body}\
         <p style=\"font-size:13px;color:#555\">Portcullis</p></body></html>",
        title = escape(title),
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn human_duration(ttl: Duration) -> String {
    let minutes = ttl.as_secs().div_ceil(60);
    match minutes {
        1 => "1 minute".into(),
        m if m < 120 => format!("{m} minutes"),
        m => format!("{} hours", m.div_ceil(60)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_mail_carries_the_link_in_both_parts_and_says_how_long_it_works() {
        let link = "https://auth.example.com/reset-password?token=abc_DEF-123";
        let mail = password_reset("ada@example.com", link, Duration::from_secs(1800));
        assert_eq!(mail.subject, "Reset your Portcullis password");
        assert!(mail.text_body.contains(link), "{}", mail.text_body);
        assert!(mail.html_body.contains(&format!("href=\"{link}\"")));
        assert!(mail.text_body.contains("within 30 minutes"));
    }

    #[test]
    fn a_notice_points_to_the_recovery_page_and_escapes_what_it_shows() {
        let mail = password_changed(
            "ada@example.com",
            "https://auth.example.com/forgot-password",
            "<script>",
        );
        assert!(mail.text_body.contains("If this wasn't you"));
        assert!(
            mail.html_body
                .contains("href=\"https://auth.example.com/forgot-password\"")
        );
        assert!(mail.html_body.contains("&lt;script&gt;"));
        assert!(!mail.html_body.contains("<script>"));
    }

    #[test]
    fn a_masked_address_keeps_only_first_letters_and_the_top_level_domain() {
        assert_eq!(mask_address("jane.doe@example.com"), "j•••@e•••.com");
        assert_eq!(mask_address("x@mail.example.co"), "x•••@m•••.co");
        assert_eq!(mask_address("odd"), "o•••@•••");
    }

    #[test]
    fn the_email_change_notice_never_shows_the_new_address_whole() {
        let mail = email_change_requested(
            "ada@example.com",
            "eve@attacker.example",
            "https://auth.example.com/forgot-password",
        );
        assert!(!mail.text_body.contains("eve@attacker.example"));
        assert!(!mail.html_body.contains("eve@attacker.example"));
        assert!(mail.text_body.contains("e•••@a•••.example"));
        assert!(mail.text_body.contains("If this wasn't you"));
    }

    #[test]
    fn links_mails_carry_their_link_in_both_parts() {
        let link = "https://auth.example.com/verify-email?token=abc";
        for mail in [
            verify_email("a@example.com", link, Duration::from_secs(86400)),
            confirm_email_change("a@example.com", link, Duration::from_secs(86400)),
        ] {
            assert!(mail.text_body.contains(link));
            assert!(mail.html_body.contains(&format!("href=\"{link}\"")));
            assert!(mail.text_body.contains("within 24 hours"));
        }
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(60)), "1 minute");
        assert_eq!(human_duration(Duration::from_secs(1800)), "30 minutes");
        assert_eq!(human_duration(Duration::from_secs(24 * 3600)), "24 hours");
    }
}
