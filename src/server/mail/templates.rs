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
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(60)), "1 minute");
        assert_eq!(human_duration(Duration::from_secs(1800)), "30 minutes");
        assert_eq!(human_duration(Duration::from_secs(24 * 3600)), "24 hours");
    }
}
