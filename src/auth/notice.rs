//! The confirmation banners a page can be sent to show ("You have been
//! signed out"), named in its `?notice=` query: one type for the server
//! (which redirects to them) and the UI (which shows them).

/// A banner, and the page it is shown on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    SignedOut,
    SessionEnded,
    PasswordChanged,
    OthersSignedOut,
    SessionRevoked,
    ResetLinkSent,
    PasswordReset,
}

impl Notice {
    pub const ALL: [Notice; 7] = [
        Notice::SignedOut,
        Notice::SessionEnded,
        Notice::PasswordChanged,
        Notice::OthersSignedOut,
        Notice::SessionRevoked,
        Notice::ResetLinkSent,
        Notice::PasswordReset,
    ];

    /// The value of `?notice=`.
    pub fn code(self) -> &'static str {
        match self {
            Notice::SignedOut => "signed_out",
            Notice::SessionEnded => "session_ended",
            Notice::PasswordChanged => "password_changed",
            Notice::OthersSignedOut => "others_signed_out",
            Notice::SessionRevoked => "session_revoked",
            Notice::ResetLinkSent => "reset_link_sent",
            Notice::PasswordReset => "password_reset",
        }
    }

    /// The notice a `?notice=` value names; unknown values name none.
    pub fn parse(code: &str) -> Option<Notice> {
        Notice::ALL.into_iter().find(|notice| notice.code() == code)
    }

    pub fn text(self) -> &'static str {
        match self {
            Notice::SignedOut => "You have been signed out.",
            Notice::SessionEnded => "Your session ended. Please sign in again.",
            Notice::PasswordChanged => "Password changed. Your other devices have been signed out.",
            Notice::OthersSignedOut => "All your other devices have been signed out.",
            Notice::SessionRevoked => "That session has been signed out.",
            Notice::ResetLinkSent => {
                "If an account exists for that address, we sent it a link to reset the password. \
                 Check your inbox."
            }
            Notice::PasswordReset => {
                "Your password has been reset and every device signed out. \
                 Sign in with your new password."
            }
        }
    }

    /// Where to go to show it: the login page for notices about a session
    /// that is over, the account page for the others.
    pub fn url(self) -> &'static str {
        match self {
            Notice::SignedOut => "/login?notice=signed_out",
            Notice::SessionEnded => "/login?notice=session_ended",
            Notice::PasswordChanged => "/account?notice=password_changed",
            Notice::OthersSignedOut => "/account?notice=others_signed_out",
            Notice::SessionRevoked => "/account?notice=session_revoked",
            Notice::ResetLinkSent => "/forgot-password?notice=reset_link_sent",
            Notice::PasswordReset => "/login?notice=password_reset",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_notice_round_trips_and_its_url_names_it() {
        for notice in Notice::ALL {
            assert_eq!(Notice::parse(notice.code()), Some(notice));
            assert!(
                notice
                    .url()
                    .ends_with(&format!("?notice={}", notice.code())),
                "{notice:?}"
            );
        }
        assert_eq!(Notice::parse("nonsense"), None);
    }
}
