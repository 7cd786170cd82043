//! `tandem plan`.
