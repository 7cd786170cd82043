//! SQL analysis. `fingerprint` (literal-free statement keys) and `classify`
//! (read / write / DDL / … with a fingerprint-keyed cache) are the
//! per-statement hot path; `pin` makes mirrored writes deterministic,
//! `translate` turns MySQL into PostgreSQL using what `schema` knows; all
//! three parse through `parse`, which guards every parse the same way.

pub mod classify;
pub mod fingerprint;
pub mod parse;
pub mod pin;
pub mod schema;
pub mod translate;

pub use classify::{Classified, Classifier, StatementClass, StatementInfo, TxnOp};
pub use fingerprint::{fingerprint, fingerprint_hash};
