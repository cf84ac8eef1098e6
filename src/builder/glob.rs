//! Artifact globs: which of the files a recipe produced are its artifacts. Pure.
//!
//! A pattern is matched against paths relative to the target's output directory, segment by
//! segment: `*` is any run of characters inside one segment, `?` one character, `**` (a whole
//! segment) any number of segments, including none. Patterns and paths that are absolute or
//! contain `..` are refused, so nothing outside the output directory can become an artifact or
//! an object key (Argo's docs warn of `../` in keys).

use std::collections::BTreeSet;

/// A checked artifact glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    segments: Vec<String>,
}

/// Why a pattern or path is not acceptable, as a sentence for an error message.
fn check_relative(s: &str, what: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if s.starts_with('/') {
        return Err(format!("{what} {s:?} is absolute; it must be relative"));
    }
    if s.contains('\\') || s.chars().any(char::is_control) {
        return Err(format!(
            "{what} {s:?} contains a backslash or a control character"
        ));
    }
    for seg in s.split('/') {
        match seg {
            "" => return Err(format!("{what} {s:?} has an empty segment (//)")),
            "." | ".." => {
                return Err(format!(
                    "{what} {s:?} contains {seg:?}; it must stay inside the output directory"
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether `path` is a plain relative path that stays where it is put: no leading `/`, no
/// `.`/`..` or empty segment, no backslash or control character.
pub fn is_safe_relative(path: &str) -> bool {
    check_relative(path, "path").is_ok()
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, String> {
        check_relative(text, "artifact glob")?;
        let segments: Vec<String> = text.split('/').map(str::to_string).collect();
        if let Some(bad) = segments
            .iter()
            .find(|s| s.contains("**") && s.as_str() != "**")
        {
            return Err(format!(
                "artifact glob {text:?}: `**` must be a whole segment, not part of {bad:?}"
            ));
        }
        Ok(Pattern {
            text: text.to_string(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the relative `path` matches. An unsafe path never matches.
    pub fn matches(&self, path: &str) -> bool {
        if !is_safe_relative(path) {
            return false;
        }
        let parts: Vec<&str> = path.split('/').collect();
        let pats: Vec<&str> = self.segments.iter().map(String::as_str).collect();
        match_segments(&pats, &parts)
    }
}

fn match_segments(pats: &[&str], parts: &[&str]) -> bool {
    match pats.split_first() {
        None => parts.is_empty(),
        Some((&"**", rest)) => (0..=parts.len()).any(|skip| match_segments(rest, &parts[skip..])),
        Some((p, rest)) => match parts.split_first() {
            Some((first, tail)) => {
                match_one(p.as_bytes(), first.as_bytes()) && match_segments(rest, tail)
            }
            None => false,
        },
    }
}

/// `*` and `?` inside one segment (iterative, with one backtrack point: linear enough for
/// file names).
fn match_one(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// The files (relative paths) that match any pattern, sorted and without duplicates. Unsafe
/// paths are left out whatever the patterns say.
pub fn select<'a>(patterns: &[Pattern], files: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let chosen: BTreeSet<String> = files
        .into_iter()
        .filter(|f| patterns.iter().any(|p| p.matches(f)))
        .map(str::to_string)
        .collect();
    chosen.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, path: &str) -> bool {
        Pattern::parse(p).unwrap().matches(path)
    }

    #[test]
    fn stars_stay_inside_a_segment() {
        assert!(m("deb/*.deb", "deb/app_1.0_amd64.deb"));
        assert!(!m("deb/*.deb", "deb/sub/app.deb"));
        assert!(!m("*.deb", "deb/app.deb"));
        assert!(m("rpm/app-?.rpm", "rpm/app-1.rpm"));
        assert!(!m("rpm/app-?.rpm", "rpm/app-10.rpm"));
        assert!(m("*", "a"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
    }

    #[test]
    fn double_star_spans_any_number_of_segments() {
        assert!(m("**", "a"));
        assert!(m("**", "a/b/c.txt"));
        assert!(m("**/*.apk", "app.apk"));
        assert!(m("**/*.apk", "outputs/apk/release/app-release.apk"));
        assert!(m("a/**/z", "a/z"));
        assert!(m("a/**/z", "a/b/c/z"));
        assert!(!m("a/**/z", "b/z"));
    }

    #[test]
    fn escaping_patterns_are_refused() {
        for bad in ["", "/etc/*", "../x", "a/../b", "./a", "a//b", "a\\b", "a**"] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn escaping_paths_never_match() {
        for path in ["../secret", "/etc/passwd", "a/../../b", "", "a//b"] {
            assert!(!m("**", path), "{path:?}");
        }
    }

    #[test]
    fn select_sorts_and_dedups() {
        let pats = vec![
            Pattern::parse("deb/*.deb").unwrap(),
            Pattern::parse("**/*.deb").unwrap(),
            Pattern::parse("rpm/*.rpm").unwrap(),
        ];
        let files = ["rpm/a.rpm", "deb/b.deb", "deb/readme.txt", "../x.deb"];
        assert_eq!(select(&pats, files), vec!["deb/b.deb", "rpm/a.rpm"]);
    }
}
