//! One module per page.

mod account;
mod email_links;
mod forgot_password;
mod home;
mod login;
mod not_found;
mod passkeys;
mod recovery_codes;
mod register;
mod reset_password;
mod two_factor;
mod verify_sign_in;

pub use account::AccountPage;
pub use email_links::{ConfirmEmailPage, VerifyEmailPage};
pub use forgot_password::ForgotPasswordPage;
pub use home::HomePage;
pub use login::LoginPage;
pub use not_found::NotFoundPage;
pub use recovery_codes::RecoveryCodesPage;
pub use register::RegisterPage;
pub use reset_password::ResetPasswordPage;
pub use verify_sign_in::VerifySignInPage;
