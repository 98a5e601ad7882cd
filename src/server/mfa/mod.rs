//! Second factors (#11, in progress): the building blocks, each tested on
//! its own. TOTP codes (RFC 6238) with the step they match, the encryption
//! at rest of their secrets, and one-time recovery codes. Enrolment, the
//! second sign-in step and their storage come next; until then no account
//! can turn a second factor on.

pub mod recovery_codes;
pub mod sealing;
pub mod totp;
