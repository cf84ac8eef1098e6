//! What the gateway accepts as presence states. y-protocols calls `JSON.parse` on every state it
//! receives, and a throw there stops the stock provider for good: it processes no further
//! message, so it never sees another edit, and every client that joins later receives the bad
//! state in its first presence snapshot. So every state of an awareness message is checked
//! before anything of the message is stored or relayed, duplicates included (the payload is
//! relayed as sent, so an entry the decoded map dropped would still reach clients).

use yrs::encoding::read::{Cursor, Read};

/// Far above what an editor's presence holds (a name, a colour, a cursor, lock wishes); every
/// state is kept by the room and sent to every joiner, so its size is bounded.
pub const MAX_STATE_BYTES: usize = 64 * 1024;
/// Deeper nesting than any editor's presence; deep values make the browser's recursive
/// `JSON.stringify` (every stock client re-encodes what it hears) throw.
pub const MAX_STATE_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The payload's structure is broken (the codec's structural check normally catches this).
    Malformed,
    /// A state that `JSON.parse` would throw on, one nested deeper than [`MAX_STATE_DEPTH`], or
    /// `null` written any other way than `null` (the gateway would keep it as a state while
    /// clients take it as a removal).
    NotJson,
    /// A state above [`MAX_STATE_BYTES`].
    TooBig,
}

/// Check every state of an awareness payload (`count, (client, clock, state)*`); the number of
/// entries, so that the caller can tell duplicates apart from the decoded map.
pub fn check(payload: &[u8]) -> Result<usize, Refusal> {
    let mut c = Cursor::new(payload);
    let n: u64 = c.read_var().map_err(|_| Refusal::Malformed)?;
    let mut entries = 0;
    for _ in 0..n {
        let _client: u64 = c.read_var().map_err(|_| Refusal::Malformed)?;
        let _clock: u64 = c.read_var().map_err(|_| Refusal::Malformed)?;
        let state = c.read_string().map_err(|_| Refusal::Malformed)?;
        state_ok(state)?;
        entries += 1;
    }
    Ok(entries)
}

/// One state: JSON of any kind (`null` is a removal), at most [`MAX_STATE_BYTES`] and
/// [`MAX_STATE_DEPTH`] deep. Refusing more than `JSON.parse` does is safe; accepting more is not.
pub fn state_ok(state: &str) -> Result<(), Refusal> {
    if state.len() > MAX_STATE_BYTES {
        return Err(Refusal::TooBig);
    }
    if depth(state) > MAX_STATE_DEPTH {
        return Err(Refusal::NotJson);
    }
    // Validates without building the value.
    if serde_json::from_str::<serde::de::IgnoredAny>(state).is_err() {
        return Err(Refusal::NotJson);
    }
    if state != "null" && state.trim_matches([' ', '\t', '\n', '\r']) == "null" {
        return Err(Refusal::NotJson);
    }
    Ok(())
}

/// The deepest nesting of arrays and objects, brackets inside strings not counted. Only
/// meaningful for valid JSON, which is checked after.
fn depth(json: &str) -> usize {
    let (mut now, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for b in json.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                now += 1;
                deepest = deepest.max(now);
            }
            b']' | b'}' => now = now.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::encoding::write::Write;

    fn payload(states: &[&str]) -> Vec<u8> {
        let mut p = Vec::new();
        p.write_var(states.len() as u64);
        for (i, s) in states.iter().enumerate() {
            p.write_var(i as u64 + 1);
            p.write_var(1u32);
            p.write_string(s);
        }
        p
    }

    #[test]
    fn json_states_of_every_kind_pass() {
        for s in [
            "null",
            "{}",
            r##"{"user":{"name":"ana","color":"#30bced"},"lockRequests":["a.ts"]}"##,
            "[1, \"two\", {\"three\": 3.5e2}]",
            "\"text\"",
            "42",
            "true",
            " {\"padded\": 1}\n",
        ] {
            assert_eq!(state_ok(s), Ok(()), "{s}");
        }
        assert_eq!(check(&payload(&["{}", "null"])), Ok(2));
    }

    #[test]
    fn states_json_parse_would_throw_on_are_refused() {
        for s in [
            "{not json",
            "",
            "undefined",
            "{\"a\":1,}",
            "'single'",
            "{} {}",
            "NaN",
            "\"raw\u{1}control\"",
        ] {
            assert_eq!(state_ok(s), Err(Refusal::NotJson), "{s:?}");
        }
        // One bad state spoils the message.
        assert_eq!(check(&payload(&["{}", "{not json"])), Err(Refusal::NotJson));
    }

    #[test]
    fn null_is_a_removal_only_when_written_as_null() {
        assert_eq!(state_ok("null"), Ok(()));
        assert_eq!(state_ok(" null"), Err(Refusal::NotJson));
        assert_eq!(state_ok("null\n"), Err(Refusal::NotJson));
    }

    #[test]
    fn large_and_deep_states_are_refused() {
        let big = format!("\"{}\"", "x".repeat(MAX_STATE_BYTES));
        assert_eq!(state_ok(&big), Err(Refusal::TooBig));
        let nested = |n| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert_eq!(state_ok(&nested(MAX_STATE_DEPTH)), Ok(()));
        assert_eq!(
            state_ok(&nested(MAX_STATE_DEPTH + 1)),
            Err(Refusal::NotJson)
        );
        // Brackets inside strings are text.
        let text = format!("{{\"a\":\"{}\\\"\"}}", "[".repeat(500));
        assert_eq!(state_ok(&text), Ok(()), "{text}");
    }

    #[test]
    fn broken_payloads_are_malformed() {
        assert_eq!(check(&[2, 1, 1]), Err(Refusal::Malformed));
        assert_eq!(check(&[]), Err(Refusal::Malformed));
    }
}
