//! `${VAR}` interpolation with Docker Compose's rules: `$VAR`, `${VAR}`, `${VAR:-default}`,
//! `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`, `${VAR:+other}`, `${VAR+other}`, `$$` for
//! a literal `$`, and defaults that themselves contain `${...}`.
//!
//! The traced form also says which variable each part of the result came from, so an error can
//! name the `.env` key that set a port or an image without guessing from values.

use std::ops::Range;

/// Look a variable up; `None` means unset (which differs from set-but-empty for `-`, `?` and `+`).
pub trait Lookup {
    fn lookup(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Lookup for F {
    fn lookup(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// The bytes `range` of an interpolated string are the value of variable `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub range: Range<usize>,
    pub name: String,
}

/// The variable whose value is exactly `range` of the result, if one is.
pub fn source_of(spans: &[Span], range: Range<usize>) -> Option<&str> {
    spans
        .iter()
        .find(|s| s.range == range)
        .map(|s| s.name.as_str())
}

/// Interpolate one string. The error is a sentence for the user (for example the `:?` message).
pub fn interpolate(input: &str, vars: &impl Lookup) -> Result<String, String> {
    interpolate_traced(input, vars).map(|(s, _)| s)
}

/// Interpolate one string and say where each variable's value landed in the result. A default
/// (`${A:-${B}}`) is traced to the variable it came from in turn.
pub fn interpolate_traced(input: &str, vars: &impl Lookup) -> Result<(String, Vec<Span>), String> {
    let mut spans = Vec::new();
    let mut out = String::with_capacity(input.len());
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                let end = matching_brace(&chars, i + 1)
                    .ok_or_else(|| format!("`{input}` has a `${{` without its closing `}}`"))?;
                let body: String = chars[i + 2..end].iter().collect();
                let (text, inner) = expand(&body, vars)?;
                let at = out.len();
                spans.extend(inner.into_iter().map(|s| Span {
                    range: s.range.start + at..s.range.end + at,
                    name: s.name,
                }));
                out.push_str(&text);
                i = end + 1;
            }
            Some(n) if n.is_ascii_alphabetic() || *n == '_' => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                let value = vars.lookup(&name).unwrap_or_default();
                spans.push(Span {
                    range: out.len()..out.len() + value.len(),
                    name,
                });
                out.push_str(&value);
                i = j;
            }
            _ => {
                // A lone `$` stays as it is, as in Compose.
                out.push('$');
                i += 1;
            }
        }
    }
    Ok((out, spans))
}

/// Index of the `}` that closes the `{` at `open`, counting nested `${`.
fn matching_brace(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut i = open;
    while i < chars.len() {
        match chars[i] {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn expand(body: &str, vars: &impl Lookup) -> Result<(String, Vec<Span>), String> {
    let name_end = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let name = &body[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!("`${{{body}}}` is not a valid variable reference"));
    }
    let op = &body[name_end..];
    let value = vars.lookup(name);
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let own = |v: String| {
        let span = Span {
            range: 0..v.len(),
            name: name.to_string(),
        };
        (v, vec![span])
    };
    let (kind, arg) = if op.is_empty() {
        return Ok(own(value.unwrap_or_default()));
    } else if let Some(a) = op.strip_prefix(":-") {
        ("default-if-empty", a)
    } else if let Some(a) = op.strip_prefix('-') {
        ("default-if-unset", a)
    } else if let Some(a) = op.strip_prefix(":?") {
        ("error-if-empty", a)
    } else if let Some(a) = op.strip_prefix('?') {
        ("error-if-unset", a)
    } else if let Some(a) = op.strip_prefix(":+") {
        ("alt-if-non-empty", a)
    } else if let Some(a) = op.strip_prefix('+') {
        ("alt-if-set", a)
    } else {
        return Err(format!("`${{{body}}}` uses an unknown operator `{op}`"));
    };
    let arg = || interpolate_traced(arg, vars);
    Ok(match kind {
        "default-if-empty" if !non_empty => arg()?,
        "default-if-unset" if !set => arg()?,
        "error-if-empty" if !non_empty => return Err(missing(name, &arg()?.0)),
        "error-if-unset" if !set => return Err(missing(name, &arg()?.0)),
        "alt-if-non-empty" => {
            if non_empty {
                arg()?
            } else {
                (String::new(), Vec::new())
            }
        }
        "alt-if-set" => {
            if set {
                arg()?
            } else {
                (String::new(), Vec::new())
            }
        }
        _ => own(value.unwrap_or_default()),
    })
}

fn missing(name: &str, message: &str) -> String {
    if message.is_empty() {
        format!("required variable {name} is missing a value")
    } else {
        format!("required variable {name} is missing a value: {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars() -> impl Lookup {
        let m: HashMap<&str, &str> = [("A", "alpha"), ("EMPTY", ""), ("PORT", "8443")]
            .into_iter()
            .collect();
        move |k: &str| m.get(k).map(|v| v.to_string())
    }

    #[test]
    fn compose_rules() {
        let v = vars();
        let cases = [
            ("${A}", "alpha"),
            ("$A-x", "alpha-x"),
            ("${MISSING}", ""),
            ("${MISSING:-d}", "d"),
            ("${EMPTY:-d}", "d"),
            ("${EMPTY-d}", ""),
            ("${MISSING-d}", "d"),
            ("${A:+yes}", "yes"),
            ("${EMPTY:+yes}", ""),
            ("${EMPTY+yes}", "yes"),
            ("$${A}", "${A}"),
            ("cost $5", "cost $5"),
            ("127.0.0.1:${PORT:-1}:8443", "127.0.0.1:8443:8443"),
            ("${MISSING:-${A}}", "alpha"),
            ("${MISSING:-${ALSO_MISSING:-deep}}", "deep"),
            ("PathPrefix(`/vscode`)", "PathPrefix(`/vscode`)"),
        ];
        for (input, want) in cases {
            assert_eq!(interpolate(input, &v).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn traces_say_which_variable_gave_each_part() {
        let v = vars();
        let (out, spans) = interpolate_traced("127.0.0.1:${PORT:-1}:8443", &v).unwrap();
        assert_eq!(out, "127.0.0.1:8443:8443");
        assert_eq!(source_of(&spans, 10..14), Some("PORT"));
        let (out, spans) = interpolate_traced("${MISSING:-${A}}-$A", &v).unwrap();
        assert_eq!(out, "alpha-alpha");
        assert_eq!(source_of(&spans, 0..5), Some("A"), "the default's variable");
        assert_eq!(source_of(&spans, 6..11), Some("A"));
        let (_, spans) = interpolate_traced("${MISSING:-literal}", &v).unwrap();
        assert!(spans.is_empty(), "a literal default comes from no variable");
    }

    #[test]
    fn required_variables_report_their_message() {
        let v = vars();
        assert_eq!(
            interpolate("${MISSING:?set it in .env}", &v).unwrap_err(),
            "required variable MISSING is missing a value: set it in .env"
        );
        assert!(interpolate("${EMPTY:?x}", &v).is_err());
        assert_eq!(interpolate("${EMPTY?x}", &v).unwrap(), "");
        assert!(interpolate("${A", &v).unwrap_err().contains("closing"));
        assert!(interpolate("${A!x}", &v)
            .unwrap_err()
            .contains("unknown operator"));
    }
}
