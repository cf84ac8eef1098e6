//! Build ids: random, so a retried submit without an idempotency key can never collide with an
//! earlier build, and safe in every place an id goes (Redis keys, object keys, URLs, labels).

use crate::core::digest::hex;
use crate::core::error::{Error, Result};
use std::fmt;

/// `b` and 24 lower-case hex digits (96 random bits).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct BuildId(String);

const HEX_LEN: usize = 24;

impl BuildId {
    /// A fresh id from the operating system's random source.
    pub fn generate() -> Result<BuildId> {
        let mut b = [0u8; HEX_LEN / 2];
        getrandom::fill(&mut b).map_err(|e| {
            Error::internal(format!("no random numbers for a build id: {e}"))
                .hint("the operating system's random source failed; try again")
        })?;
        Ok(BuildId(format!("b{}", hex(&b))))
    }

    /// An id given by a caller (a URL, a CLI argument).
    pub fn parse(s: &str) -> Result<BuildId> {
        let ok = s.len() == HEX_LEN + 1
            && s.starts_with('b')
            && s[1..]
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
        if !ok {
            return Err(Error::bad_input(format!("{s:?} is not a build id")).hint(
                "a build id is 'b' and 24 hex digits, as printed by `appgear builder submit`",
            ));
        }
        Ok(BuildId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BuildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_differ() {
        let a = BuildId::generate().unwrap();
        let b = BuildId::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(BuildId::parse(a.as_str()).unwrap(), a);
        for bad in [
            "",
            "b",
            "B0123456789abcdef01234567",
            "b0123456789abcdef0123456g",
            "b../etc",
        ] {
            assert!(BuildId::parse(bad).is_err(), "{bad}");
        }
    }
}
