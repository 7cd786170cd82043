//! `tandem cutover`: the fenced flip of a fleet's authoritative database.
