//! Client-facing protocol front ends.

pub mod mysql;
