pub mod classify;
pub mod fingerprint;
pub mod pin;
pub mod schema;
pub mod translate;
