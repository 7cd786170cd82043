pub mod classify;
pub mod fingerprint;
