//! Bearer tokens: a request names its token in `Authorization: Bearer <token>`; the config holds
//! only each token's SHA-256. The digest is compared with every configured token in constant
//! time, so timing says nothing about which token or how much of it matched. Pure.

use crate::builder::config::{Scope, Token};
use crate::core::digest::sha256_hex;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No token, or one the config does not know: 401.
    Unauthenticated,
    /// A known token without the scope: 403.
    Forbidden { token: String, scope: Scope },
}

fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token's name if `authorization` carries a token with `scope`.
pub fn authorize(
    tokens: &[Token],
    authorization: Option<&str>,
    scope: Scope,
) -> Result<String, Denied> {
    let presented = authorization
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(Denied::Unauthenticated)?;
    let digest = sha256_hex(presented.as_bytes());
    let mut found: Option<&Token> = None;
    for t in tokens {
        // No early exit: every token is compared.
        if same(t.sha256.as_bytes(), digest.as_bytes()) {
            found = Some(t);
        }
    }
    let t = found.ok_or(Denied::Unauthenticated)?;
    if !t.scopes.contains(&scope) {
        return Err(Denied::Forbidden {
            token: t.name.clone(),
            scope,
        });
    }
    Ok(t.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Vec<Token> {
        vec![Token {
            name: "n8n".into(),
            sha256: sha256_hex(b"s3cret"),
            scopes: [Scope::Submit, Scope::Read].into_iter().collect(),
        }]
    }

    #[test]
    fn scopes_and_failures() {
        let t = tokens();
        assert_eq!(
            authorize(&t, Some("Bearer s3cret"), Scope::Submit),
            Ok("n8n".into())
        );
        assert_eq!(
            authorize(&t, Some("Bearer s3cret"), Scope::Cancel),
            Err(Denied::Forbidden {
                token: "n8n".into(),
                scope: Scope::Cancel
            })
        );
        for bad in [
            None,
            Some("Bearer "),
            Some("Bearer wrong"),
            Some("Basic s3cret"),
            Some("s3cret"),
        ] {
            assert_eq!(
                authorize(&t, bad, Scope::Read),
                Err(Denied::Unauthenticated),
                "{bad:?}"
            );
        }
    }
}
