//! The room is the URL path after the gateway's prefix, percent-decoded: `/multiplayer/a/b.ts`
//! is room `a/b.ts`. Query parameters never take part in routing.

pub const MAX_ROOM_LEN: usize = 1024;

/// `None`: the path is not under the prefix. `Some(Err)`: under it, but not a usable room name.
pub fn room_from_path(path: &str, prefix: &str) -> Option<Result<String, ()>> {
    let rest = path.strip_prefix(prefix)?;
    let raw = rest.strip_prefix('/')?;
    Some(decode(raw))
}

/// Strip the prefix from a plain HTTP path (`/multiplayer/healthz` → `/healthz`), or keep it.
pub fn local_path<'a>(path: &'a str, prefix: &str) -> &'a str {
    match path.strip_prefix(prefix) {
        Some(rest) if !prefix.is_empty() && rest.starts_with('/') => rest,
        _ => path,
    }
}

/// The one rule for a room name, wherever it comes from (the upgrade's path, `/locks?room=`):
/// 1 to 1024 bytes of text without control characters.
pub fn valid_room(room: &str) -> bool {
    !room.is_empty() && room.len() <= MAX_ROOM_LEN && !room.chars().any(char::is_control)
}

fn decode(raw: &str) -> Result<String, ()> {
    let bytes = percent_decode_lenient(raw.as_bytes());
    let room = String::from_utf8(bytes).map_err(|_| ())?;
    if !valid_room(&room) {
        return Err(());
    }
    Ok(room)
}

/// The stock client puts the room name in the URL as it is, so `100%.md` arrives with a `%`
/// that starts no escape: such a `%` is kept as a character rather than refusing the room
/// (which would be a permanent 4400 for a legitimate name).
fn percent_decode_lenient(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let escaped = (b[i] == b'%')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rooms_from_paths() {
        let p = "/multiplayer";
        assert_eq!(room_from_path("/multiplayer/a", p), Some(Ok("a".into())));
        assert_eq!(
            room_from_path("/multiplayer/a/b/file.ts", p),
            Some(Ok("a/b/file.ts".into()))
        );
        assert_eq!(
            room_from_path("/multiplayer/%C3%A7%C3%A3o%20%F0%9F%8E%89", p),
            Some(Ok("ção 🎉".into()))
        );
        assert_eq!(room_from_path("/multiplayer/", p), Some(Err(())));
        assert_eq!(room_from_path("/multiplayer/%FF", p), Some(Err(())));
        // A `%` that starts no escape is part of the name.
        assert_eq!(room_from_path("/multiplayer/%2", p), Some(Ok("%2".into())));
        assert_eq!(
            room_from_path("/multiplayer/100%.md", p),
            Some(Ok("100%.md".into()))
        );
        assert_eq!(
            room_from_path("/multiplayer/50%25%zz", p),
            Some(Ok("50%%zz".into()))
        );
        assert_eq!(
            room_from_path("/multiplayer/%+1", p),
            Some(Ok("%+1".into()))
        );
        assert_eq!(room_from_path("/other/a", p), None);
        assert_eq!(room_from_path("/multiplayerx/a", p), None);
        assert_eq!(room_from_path("/a", ""), Some(Ok("a".into())));
    }

    #[test]
    fn plain_paths() {
        assert_eq!(
            local_path("/multiplayer/healthz", "/multiplayer"),
            "/healthz"
        );
        assert_eq!(local_path("/healthz", "/multiplayer"), "/healthz");
        assert_eq!(local_path("/healthz", ""), "/healthz");
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,64}") {
            let _ = room_from_path(&s, "/multiplayer");
            let _ = room_from_path(&format!("/multiplayer/{s}"), "/multiplayer");
        }
    }
}
