pub mod classify;
pub mod fingerprint;
pub mod schema;
pub mod translate;
