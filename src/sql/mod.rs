pub mod classify;
pub mod fingerprint;
pub mod pin;
