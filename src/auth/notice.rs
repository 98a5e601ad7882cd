//! The confirmation banners a page can be sent to show ("You have been
//! signed out"), named in its `?notice=` query: one type for the server
//! (which redirects to them) and the UI (which shows them).

/// A banner, and the page it is shown on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    SignedOut,
    SessionEnded,
    EndedElsewhere,
    PasswordChanged,
    OthersSignedOut,
    SessionRevoked,
    ResetLinkSent,
    PasswordReset,
    CheckEmail,
    EmailVerified,
    AddressConfirmed,
    VerificationSent,
    VerificationResent,
    EmailChangeSent,
    EmailChanged,
    AddressChanged,
    TwoFactorOn,
    TwoFactorOff,
    RecoveryCodesSaved,
    SignInExpired,
}

impl Notice {
    pub const ALL: [Notice; 20] = [
        Notice::SignedOut,
        Notice::SessionEnded,
        Notice::EndedElsewhere,
        Notice::PasswordChanged,
        Notice::OthersSignedOut,
        Notice::SessionRevoked,
        Notice::ResetLinkSent,
        Notice::PasswordReset,
        Notice::CheckEmail,
        Notice::EmailVerified,
        Notice::AddressConfirmed,
        Notice::VerificationSent,
        Notice::VerificationResent,
        Notice::EmailChangeSent,
        Notice::EmailChanged,
        Notice::AddressChanged,
        Notice::TwoFactorOn,
        Notice::TwoFactorOff,
        Notice::RecoveryCodesSaved,
        Notice::SignInExpired,
    ];

    /// The value of `?notice=`.
    pub fn code(self) -> &'static str {
        match self {
            Notice::SignedOut => "signed_out",
            Notice::SessionEnded => "session_ended",
            Notice::EndedElsewhere => "ended_elsewhere",
            Notice::PasswordChanged => "password_changed",
            Notice::OthersSignedOut => "others_signed_out",
            Notice::SessionRevoked => "session_revoked",
            Notice::ResetLinkSent => "reset_link_sent",
            Notice::PasswordReset => "password_reset",
            Notice::CheckEmail => "check_email",
            Notice::EmailVerified => "email_verified",
            Notice::AddressConfirmed => "address_confirmed",
            Notice::VerificationSent => "verification_sent",
            Notice::VerificationResent => "verification_resent",
            Notice::EmailChangeSent => "email_change_sent",
            Notice::EmailChanged => "email_changed",
            Notice::AddressChanged => "address_changed",
            Notice::TwoFactorOn => "two_factor_on",
            Notice::TwoFactorOff => "two_factor_off",
            Notice::RecoveryCodesSaved => "recovery_codes_saved",
            Notice::SignInExpired => "sign_in_expired",
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
            Notice::EndedElsewhere => "Your session was ended on another device.",
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
            Notice::CheckEmail => {
                "We sent a link to confirm your email address. Check your inbox, then sign in."
            }
            Notice::EmailVerified => "Your email address is confirmed. You can sign in.",
            Notice::AddressConfirmed => "Your email address is confirmed.",
            Notice::VerificationSent => {
                "We sent a new link to confirm your email address. Check your inbox."
            }
            Notice::VerificationResent => {
                "If that address still needs confirming, we sent it a new link. Check your inbox."
            }
            Notice::EmailChangeSent => {
                "We sent a link to the new address. Your address changes when you follow it."
            }
            Notice::EmailChanged => {
                "Your email address was changed. Your other devices have been signed out."
            }
            Notice::AddressChanged => {
                "Your email address was changed and your other devices signed out. Sign in with the new address."
            }
            Notice::TwoFactorOn => {
                "Two-factor sign-in is on. Signing in now also asks for a code from your app."
            }
            Notice::TwoFactorOff => {
                "Two-factor sign-in is off. Your other devices have been signed out."
            }
            Notice::RecoveryCodesSaved => {
                "Keep your recovery codes somewhere safe: each one signs you in once without your app."
            }
            Notice::SignInExpired => {
                "That sign-in expired or was already used. Sign in with your password again."
            }
        }
    }

    /// Where to go to show it: the login page for notices about a session
    /// that is over, the account page for the others.
    pub fn url(self) -> &'static str {
        match self {
            Notice::SignedOut => "/login?notice=signed_out",
            Notice::SessionEnded => "/login?notice=session_ended",
            Notice::EndedElsewhere => "/login?notice=ended_elsewhere",
            Notice::PasswordChanged => "/account?notice=password_changed",
            Notice::OthersSignedOut => "/account?notice=others_signed_out",
            Notice::SessionRevoked => "/account?notice=session_revoked",
            Notice::ResetLinkSent => "/forgot-password?notice=reset_link_sent",
            Notice::PasswordReset => "/login?notice=password_reset",
            Notice::CheckEmail => "/login?notice=check_email",
            Notice::EmailVerified => "/login?notice=email_verified",
            Notice::AddressConfirmed => "/account?notice=address_confirmed",
            Notice::VerificationSent => "/account?notice=verification_sent",
            Notice::VerificationResent => "/login?notice=verification_resent",
            Notice::EmailChangeSent => "/account?notice=email_change_sent",
            Notice::EmailChanged => "/account?notice=email_changed",
            Notice::AddressChanged => "/login?notice=address_changed",
            Notice::TwoFactorOn => "/account?notice=two_factor_on",
            Notice::TwoFactorOff => "/account?notice=two_factor_off",
            Notice::RecoveryCodesSaved => "/account?notice=recovery_codes_saved",
            Notice::SignInExpired => "/login?notice=sign_in_expired",
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
