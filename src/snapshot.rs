//! One validated configuration with what is derived from it (the users'
//! credentials): what every statement reads once, through `ArcSwap`, and a
//! reload replaces whole. Its own module so that the parts that read it
//! (shadow comparers, sessions) need not import the server.

use std::collections::HashMap;

use crate::auth::{parse_native_hash, Credential};
use crate::config::Config;

/// One validated configuration with what is derived from it.
pub struct Snapshot {
    pub config: Config,
    pub users: HashMap<String, Credential>,
}

impl Snapshot {
    pub fn new(config: Config) -> Self {
        let users = config
            .users
            .iter()
            .map(|u| {
                let cred = match (&u.password, &u.password_sha1) {
                    (Some(p), _) => Credential::Plain(p.clone()),
                    // Validation guarantees the hash parses.
                    (None, Some(h)) => {
                        Credential::NativeHash(parse_native_hash(h).unwrap_or([0; 20]))
                    }
                    (None, None) => Credential::NativeHash([0; 20]),
                };
                (u.name.clone(), cred)
            })
            .collect();
        Self { config, users }
    }
}
