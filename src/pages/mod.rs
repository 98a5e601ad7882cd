//! One module per page.

mod account;
mod email_links;
mod forgot_password;
mod home;
mod login;
mod not_found;
mod register;
mod reset_password;

pub use account::AccountPage;
pub use email_links::{ConfirmEmailPage, VerifyEmailPage};
pub use forgot_password::ForgotPasswordPage;
pub use home::HomePage;
pub use login::LoginPage;
pub use not_found::NotFoundPage;
pub use register::RegisterPage;
pub use reset_password::ResetPasswordPage;
