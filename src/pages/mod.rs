//! One module per page.

mod account;
mod home;
mod login;
mod not_found;
mod register;

pub use account::AccountPage;
pub use home::HomePage;
pub use login::LoginPage;
pub use not_found::NotFoundPage;
pub use register::RegisterPage;
