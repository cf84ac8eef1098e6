//! Access tokens: `mp1.<claims>.<signature>`, both parts base64url without padding.
//!
//! The claims are JSON (`{"ws":"<workspace>","ro":false,"exp":<unix seconds>,"sub":"<who>"}`) and
//! the signature is HMAC-SHA256 over `mp1.<claims>` with the workspace's secret. The alphabet is
//! that of an HTTP token, so a token can travel as a `Sec-WebSocket-Protocol` value.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::{SystemTime, UNIX_EPOCH};

pub const PREFIX: &str = "mp1.";
/// A subject names an HTTP lock holder (`http:<subject>`, at most 256 bytes with the prefix).
pub const MAX_SUBJECT_LEN: usize = 250;
/// The subject rule in words, for every message that refuses one.
pub const SUBJECT_RULE: &str = "1 to 250 bytes of text without control characters";
/// A secret shorter than this is refused: it could be guessed.
pub const MIN_SECRET_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The workspace the token is for.
    pub ws: String,
    /// Read-only: receives updates, its writes are dropped.
    #[serde(default)]
    pub ro: bool,
    /// Expiry, unix seconds.
    pub exp: u64,
    /// Who holds it (shown as a lock owner for HTTP lock calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    BadSignature,
    Expired,
    WrongWorkspace,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenError::Malformed => "malformed token",
            TokenError::BadSignature => "token signature does not match",
            TokenError::Expired => "token expired",
            TokenError::WrongWorkspace => "token is for another workspace",
        })
    }
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn mint(claims: &Claims, secret: &[u8]) -> String {
    // Serializing a struct of strings, bools and integers cannot fail.
    let json = serde_json::to_vec(claims).unwrap_or_default();
    let signed = format!("{PREFIX}{}", b64url_encode(&json));
    let sig = hmac_sha256(secret, signed.as_bytes());
    format!("{signed}.{}", b64url_encode(&sig))
}

/// Check signature, expiry and workspace.
pub fn verify(token: &str, secret: &[u8], workspace: &str, now: u64) -> Result<Claims, TokenError> {
    let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
    let (claims_b64, sig_b64) = rest.split_once('.').ok_or(TokenError::Malformed)?;
    let sig = b64url_decode(sig_b64).ok_or(TokenError::Malformed)?;
    let signed_len = PREFIX.len() + claims_b64.len();
    let expected = hmac_sha256(secret, &token.as_bytes()[..signed_len]);
    if !constant_time_eq(&sig, &expected) {
        return Err(TokenError::BadSignature);
    }
    let json = b64url_decode(claims_b64).ok_or(TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    if claims.exp <= now {
        return Err(TokenError::Expired);
    }
    if claims.ws != workspace {
        return Err(TokenError::WrongWorkspace);
    }
    Ok(claims)
}

/// The one subject rule, for `appgear multiplayer token --subject` and the lock endpoints alike:
/// a token minted with a subject the lock API would refuse is of no use to its holder.
pub fn valid_subject(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_SUBJECT_LEN && !s.chars().any(char::is_control)
}

/// Whether a string looks like one of our tokens (to pick it among offered subprotocols).
pub fn looks_like_token(s: &str) -> bool {
    s.starts_with(PREFIX)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// HMAC (RFC 2104) over SHA-256.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut ipad = [0x36u8; BLOCK];
    let mut opad = [0x5cu8; BLOCK];
    for i in 0..BLOCK {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

pub fn b64url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        B64.iter().position(|&x| x == c).map(|p| p as u32)
    }
    let bytes = s.as_bytes();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let produced = chunk.len() - 1;
        for i in 0..produced {
            out.push((n >> (16 - 8 * i)) as u8);
        }
        // Non-canonical trailing bits would let two strings decode to the same bytes.
        let used_bits = produced * 8;
        let mask = (1u32 << (24 - used_bits)) - 1;
        if chunk.len() < 4 && (n & mask) != 0 {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::digest::hex;
    use proptest::prelude::*;

    #[test]
    fn hmac_matches_rfc4231() {
        // Test case 2 of RFC 4231.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block size.
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn base64url_known_values() {
        assert_eq!(b64url_encode(b""), "");
        assert_eq!(b64url_encode(b"f"), "Zg");
        assert_eq!(b64url_encode(b"fo"), "Zm8");
        assert_eq!(b64url_encode(b"foo"), "Zm9v");
        assert_eq!(b64url_encode(&[0xfb, 0xff]), "-_8");
        assert_eq!(b64url_decode("Zm8").unwrap(), b"fo");
        assert!(b64url_decode("Zm9").is_none(), "non-canonical tail");
        assert!(b64url_decode("Z").is_none());
        assert!(b64url_decode("Zm+v").is_none());
    }

    const SECRET: &[u8] = b"0123456789abcdef0123";

    fn claims(ws: &str, exp: u64) -> Claims {
        Claims {
            ws: ws.into(),
            ro: false,
            exp,
            sub: Some("ana".into()),
        }
    }

    #[test]
    fn mint_then_verify() {
        let t = mint(&claims("w1", 2000), SECRET);
        assert_eq!(verify(&t, SECRET, "w1", 1000).unwrap(), claims("w1", 2000));
        assert_eq!(
            verify(&t, SECRET, "w2", 1000),
            Err(TokenError::WrongWorkspace)
        );
        assert_eq!(verify(&t, SECRET, "w1", 2000), Err(TokenError::Expired));
        assert_eq!(
            verify(&t, b"another secret 1234", "w1", 1000),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify("nope", SECRET, "w1", 1000),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn tampered_claims_fail() {
        let t = mint(&claims("w1", 2000), SECRET);
        let forged_claims = b64url_encode(br#"{"ws":"w1","ro":false,"exp":9999999999}"#);
        let sig = t.rsplit_once('.').unwrap().1;
        let forged = format!("{PREFIX}{forged_claims}.{sig}");
        assert_eq!(
            verify(&forged, SECRET, "w1", 1000),
            Err(TokenError::BadSignature)
        );
    }

    proptest! {
        #[test]
        fn base64url_round_trips(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            prop_assert_eq!(b64url_decode(&b64url_encode(&data)).unwrap(), data);
        }

        #[test]
        fn verify_never_panics(s in "\\PC{0,200}") {
            let _ = verify(&s, SECRET, "w1", 0);
            let _ = verify(&format!("{PREFIX}{s}"), SECRET, "w1", 0);
        }
    }
}
