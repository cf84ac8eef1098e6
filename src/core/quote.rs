//! Values quoted back in messages, cut to a readable length: a message is one line on a
//! terminal, and a hostile or mistaken input (a 1 MB workspace id, a 1 MB scalar a parser
//! complains about) must not turn it into a megabyte.

/// `s` as it is when it has at most `max` characters; otherwise its first `max` characters,
/// an ellipsis, and how long it really was.
pub fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((end, _)) => format!("{}… ({} characters)", &s[..end], s.chars().count()),
    }
}

/// `s` in double quotes with Rust's escapes (as `{:?}` prints it), cut to `max` characters.
pub fn quoted(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => format!("{s:?}"),
        Some((end, _)) => format!("{:?}… ({} characters)", &s[..end], s.chars().count()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_kept_and_long_ones_cut() {
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("abcd", 3), "abc… (4 characters)");
        assert_eq!(quoted("a\"b", 10), "\"a\\\"b\"");
        assert_eq!(quoted(&"é".repeat(100), 2), "\"éé\"… (100 characters)");
    }
}
