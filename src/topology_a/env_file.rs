//! The `.env` file as text lines, so that editing one key keeps the user's comments, order and
//! keys appgear does not know. Values are read by dotenvy, which follows the same rules as Docker
//! Compose's `.env` (quotes, `#` comments, `${VAR}` substitution), and written in a form that
//! Docker Compose v2 and Debian's docker-compose 1.29 (python-dotenv) read the same. Pure: no IO.

use std::collections::BTreeMap;

/// One line of a `.env` file.
#[derive(Debug, Clone, PartialEq)]
enum Line {
    /// A comment, a blank line or anything that is not `KEY=VALUE`: kept verbatim.
    Other(String),
    /// `KEY=VALUE`; `raw` is the whole line as written, so an untouched entry is written back as is.
    Entry { key: String, raw: String },
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvFile {
    /// The file started with a UTF-8 byte order mark (Windows editors write one; Compose reads
    /// past it). Kept, so an untouched file is written back byte for byte.
    bom: bool,
    lines: Vec<Line>,
    values: BTreeMap<String, String>,
}

const BOM: char = '\u{feff}';

impl EnvFile {
    /// Parse the text of a `.env` file. A malformed line is an error naming its number.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (bom, text) = match text.strip_prefix(BOM) {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let mut lines = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                lines.push(Line::Other(raw.to_string()));
                continue;
            }
            let body = trimmed.strip_prefix("export ").unwrap_or(trimmed);
            let Some((key, _value)) = body.split_once('=') else {
                return Err(format!(
                    "line {}: expected KEY=VALUE, found `{trimmed}`",
                    n + 1
                ));
            };
            let key = key.trim();
            if !valid_key(key) {
                return Err(format!(
                    "line {}: `{key}` is not a valid variable name",
                    n + 1
                ));
            }
            lines.push(Line::Entry {
                key: key.to_string(),
                raw: raw.to_string(),
            });
        }
        let mut file = EnvFile {
            bom,
            lines,
            values: BTreeMap::new(),
        };
        file.values = read_values(&file.render_lines())?;
        Ok(file)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Set a key: rewrites its line in place, or appends it at the end.
    pub fn set(&mut self, key: &str, value: &str) {
        let raw = format!("{key}={}", quote(value));
        for line in self.lines.iter_mut().rev() {
            if let Line::Entry { key: k, raw: r } = line {
                if k == key {
                    *r = raw;
                    self.values.insert(key.to_string(), value.to_string());
                    return;
                }
            }
        }
        self.lines.push(Line::Entry {
            key: key.to_string(),
            raw,
        });
        self.values.insert(key.to_string(), value.to_string());
    }

    /// Append a comment line (used to describe keys appgear adds).
    pub fn comment(&mut self, text: &str) {
        self.lines.push(Line::Other(format!("# {text}")));
    }

    pub fn blank(&mut self) {
        self.lines.push(Line::Other(String::new()));
    }

    /// Every key with its value; the last definition of a key wins.
    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    pub fn render(&self) -> String {
        let mut s = if self.bom {
            BOM.to_string()
        } else {
            String::new()
        };
        s.push_str(&self.render_lines());
        s
    }

    fn render_lines(&self) -> String {
        let mut s = String::new();
        for l in &self.lines {
            match l {
                Line::Other(t) => s.push_str(t),
                Line::Entry { raw, .. } => s.push_str(raw),
            }
            s.push('\n');
        }
        s
    }
}

pub fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// The values as Docker Compose would see them. dotenvy substitutes `${VAR}` from earlier lines
/// and from the process environment, as Compose does; we keep that so both agree.
fn read_values(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok((k, v)) => {
                out.insert(k, v);
            }
            Err(dotenvy::Error::LineParse(line, _)) => {
                return Err(format!(
                    "cannot read `{}` (quote a value that has spaces)",
                    line.trim()
                ))
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(out)
}

/// Whether `set` can write `v` so that every Compose reads it back as `v`: dotenvy (Compose v2's
/// rules) and python-dotenv 0.21 (Debian's docker-compose 1.29) disagree on escapes, so:
/// - single quotes keep everything literal for dotenvy, but cannot hold a `'`, python-dotenv
///   decodes `\\` in them, and it expands `${...}` even there;
/// - double quotes need `$` escaped for dotenvy, an escape python-dotenv does not know;
/// - python-dotenv takes a `\` before the closing quote as escaping it.
///
/// What no form carries alike is refused (checked exhaustively against python-dotenv).
pub fn writable(v: &str) -> Result<(), String> {
    if v.chars().any(|c| c.is_control() && c != '\t' && c != '\n') {
        return Err("the value holds a control character, which .env cannot carry".into());
    }
    if v.contains("${") {
        return Err("the value holds `${`, which docker-compose 1.29 always reads as a variable, even in quotes".into());
    }
    if needs_double_quotes(v) && v.contains('$') {
        return Err("the value holds a `$` together with a `'`, a `\\` or a line break; no way of writing it in .env reads the same in Docker Compose and docker-compose 1.29".into());
    }
    if v.ends_with('\\') {
        return Err("the value ends with `\\`, which docker-compose 1.29 reads as escaping the closing quote".into());
    }
    Ok(())
}

fn needs_double_quotes(v: &str) -> bool {
    v.contains(['\'', '\\', '\n'])
}

/// Quote a value only when it needs it, in a form both Compose readers agree on (see
/// [`writable`]): plain, else single quotes (`$` stays literal), else double quotes with `\\`,
/// `\"` and `\n` escaped (no `$` there).
fn quote(v: &str) -> String {
    let plain = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@+,=%".contains(c));
    if plain {
        v.to_string()
    } else if !needs_double_quotes(v) {
        format!("'{v}'")
    } else {
        let escaped = v
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        format!("\"{escaped}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_comments_order_and_unknown_keys_when_setting() {
        let text = "# mine\nFOO=1\n\nMY_OWN=\"keep me\" # note\nBAR=\"two words\"\n";
        let mut f = EnvFile::parse(text).unwrap();
        assert_eq!(f.get("MY_OWN"), Some("keep me"));
        assert_eq!(f.get("BAR"), Some("two words"));
        f.set("FOO", "3");
        f.set("NEW", "x y");
        assert_eq!(
            f.render(),
            "# mine\nFOO=3\n\nMY_OWN=\"keep me\" # note\nBAR=\"two words\"\nNEW='x y'\n"
        );
    }

    #[test]
    fn untouched_file_renders_byte_identical() {
        let text = "A=1\nexport B='$literal'\n# c\n";
        assert_eq!(EnvFile::parse(text).unwrap().render(), text);
        assert_eq!(EnvFile::parse(text).unwrap().get("B"), Some("$literal"));
    }

    #[test]
    fn quoting_round_trips() {
        for v in [
            "plain",
            "with space",
            "it's",
            "a\"b",
            "",
            "$HOME",
            "x#y",
            "back\\slash 'q'",
            "two\\\\back",
            "line\nbreak",
        ] {
            assert!(writable(v).is_ok(), "{v:?}");
            let mut f = EnvFile::default();
            f.set("K", v);
            let back = EnvFile::parse(&f.render()).unwrap();
            assert_eq!(back.get("K"), Some(v), "value {v:?}");
        }
    }

    /// Every value `writable` accepts, up to four characters over the characters that matter to
    /// quoting, reads back the same (python-dotenv was checked with the same alphabet).
    #[test]
    fn every_writable_value_reads_back_as_written() {
        let alphabet = ['a', ' ', '\\', '"', '\'', '\n', '#', '$', '{', '}', '\t'];
        let mut values = vec![String::new()];
        let mut checked = 0;
        for _ in 0..4 {
            values = values
                .iter()
                .flat_map(|v| alphabet.iter().map(move |c| format!("{v}{c}")))
                .collect();
            for v in values.iter().filter(|v| writable(v).is_ok()) {
                let mut f = EnvFile::default();
                f.set("K", v);
                f.set("NEXT", "ok");
                let back = EnvFile::parse(&f.render()).unwrap();
                assert_eq!(
                    (back.get("K"), back.get("NEXT")),
                    (Some(v.as_str()), Some("ok")),
                    "{v:?}"
                );
                checked += 1;
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    #[test]
    fn values_no_form_carries_alike_are_refused() {
        for v in [
            "it's $HOME",
            "a\\b$c",
            "x\n$y",
            "bell\u{7}",
            "${HOME}",
            "'${X}'",
            "ends\\",
        ] {
            assert!(writable(v).is_err(), "{v:?}");
        }
        assert!(writable("$HOME 'nothing else'").is_err());
        assert!(writable("$HOME \"quoted\"").is_ok());
    }

    #[test]
    fn a_byte_order_mark_is_read_past_and_kept() {
        let text = "\u{feff}# notes\nA=1\n";
        let mut f = EnvFile::parse(text).unwrap();
        assert_eq!(f.get("A"), Some("1"));
        assert_eq!(f.render(), text);
        f.set("A", "2");
        assert_eq!(f.render(), "\u{feff}# notes\nA=2\n");
    }

    #[test]
    fn malformed_lines_name_their_number() {
        assert_eq!(
            EnvFile::parse("A=1\nnot a pair\n").unwrap_err(),
            "line 2: expected KEY=VALUE, found `not a pair`"
        );
        assert!(EnvFile::parse("1A=2")
            .unwrap_err()
            .contains("not a valid variable name"));
        assert!(EnvFile::parse("A='open")
            .unwrap_err()
            .contains("cannot read"));
    }

    #[test]
    fn last_definition_wins() {
        let f = EnvFile::parse("A=1\nA=2\n").unwrap();
        assert_eq!(f.get("A"), Some("2"));
    }
}
