//! `appgear config`: read and edit the home's `.env`. A value is checked before it is written:
//! against its key's rule, against the keys it must not clash with, and for a form every Compose
//! reads back the same; a secret is never echoed.

use crate::core::error::{Error, Result};
use crate::topology_a::env_file::{self, valid_key};
use crate::topology_a::env_store;
use crate::topology_a::home::Home;
use crate::topology_a::keys;

/// One key of `.env` as `config list` shows it.
pub struct Entry {
    pub key: String,
    /// The value, or `********` for a secret unless asked for.
    pub value: String,
    /// What the key means, for appgear's keys.
    pub help: String,
}

/// What `config set` did.
pub struct Set {
    /// The key is not one of appgear's (kept for the user's own compose variables).
    pub unknown_key: bool,
    /// The value as it may be shown (`********` for a secret).
    pub shown: String,
}

const MASK: &str = "********";

pub fn list(home: &Home, show_secrets: bool) -> Result<Vec<Entry>> {
    let env = env_store::load(home)?;
    Ok(env
        .values()
        .iter()
        .map(|(k, v)| Entry {
            key: k.clone(),
            value: if !show_secrets && keys::is_secret(k) {
                MASK.to_string()
            } else {
                v.clone()
            },
            help: keys::key(k).map(|k| k.help.to_string()).unwrap_or_default(),
        })
        .collect())
}

pub fn get(home: &Home, key: &str) -> Result<String> {
    let env = env_store::load(home)?;
    env.get(key).map(str::to_string).ok_or_else(|| {
        Error::bad_input(format!("{key} is not set in {}", home.env_path().display()))
            .hint("`appgear config list` shows the keys")
    })
}

/// Refuse with the key named and "nothing was changed" after the rule's own hint.
fn refuse(key: &str, message: &str, hint: Option<String>) -> Error {
    let unchanged = "nothing was changed";
    Error::bad_input(format!("{key}: {message}")).hint(match hint {
        Some(h) => format!("{h}; {unchanged}"),
        None => unchanged.to_string(),
    })
}

pub fn set(home: &Home, key: &str, value: &str) -> Result<Set> {
    if !valid_key(key) {
        return Err(
            Error::bad_input(format!("`{key}` is not a valid variable name"))
                .hint("use letters, digits and _, not starting with a digit"),
        );
    }
    keys::validate(key, value).map_err(|e| refuse(key, &e.message, e.hint))?;
    env_file::writable(value).map_err(|e| {
        refuse(
            key,
            &e,
            Some("leave one of those characters out (a password of letters and digits works everywhere)".into()),
        )
    })?;
    let _lock = home.lock("config set")?;
    let mut env = env_store::load(home)?;
    let after = |k: &str| {
        if k == key {
            Some(value.to_string())
        } else {
            env.get(k).map(str::to_string)
        }
    };
    if let Some(clash) = keys::clashes(after)
        .into_iter()
        .find(|c| c.keys.contains(&key))
    {
        return Err(refuse(
            key,
            &clash.message,
            Some(format!("pick another port for {key}")),
        ));
    }
    env.set(key, value);
    env_store::save(&home.dir()?, &env)?;
    Ok(Set {
        unknown_key: keys::key(key).is_none(),
        shown: if keys::is_secret(key) {
            MASK.to_string()
        } else {
            value.to_string()
        },
    })
}
