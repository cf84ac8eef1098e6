//! YAML written by users, read within bounds.
//!
//! A YAML alias repeats the node its anchor names, and serde_norway copies every repetition into
//! the value it builds: a 1 MB file with one large scalar aliased at every use, or nested
//! aliases ("billion laughs"), stands for gigabytes. So a file is read only up to a size limit,
//! then measured with its aliases expanded (the measuring builds nothing: a scalar costs its
//! length, whatever its size), and built into values only when that expansion fits a budget.
//! Files that have no use for aliases refuse them before any parsing (`first_anchor_or_alias`).

use serde::de::{self, Deserialize, DeserializeSeed, Visitor};
use serde_norway::Value;
use std::cell::Cell;
use std::fmt;
use std::io::Read;
use std::path::Path;

/// How much the values built from YAML may still grow by, once aliases are expanded: nodes
/// (each costs a value of roughly a hundred bytes) and scalar bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub nodes: u64,
    pub bytes: u64,
}

/// Why YAML text gave no values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum YamlError {
    /// The text is not YAML; the parser's message, cut to a readable length.
    Syntax(String),
    /// With its aliases expanded, the text is larger than the budget allowed.
    TooLarge,
}

/// Every document of `text`, built only if, with aliases expanded, all of them fit `budget`
/// (which is charged for what was built).
pub fn documents(text: &str, budget: &mut Budget) -> Result<Vec<Value>, YamlError> {
    measure(text, budget)?;
    serde_norway::Deserializer::from_str(text)
        .map(Value::deserialize)
        .collect::<Result<Vec<Value>, _>>()
        .map_err(|e| syntax(&e))
}

/// The one document of `text` as a `T`, deserialized only if it fits `budget`. Deserialized
/// from the text itself, so that errors name the line and the field.
pub fn document<T: de::DeserializeOwned>(text: &str, budget: &mut Budget) -> Result<T, YamlError> {
    measure(text, budget)?;
    serde_norway::from_str(text).map_err(|e| syntax(&e))
}

/// Walk every document of `text` with its aliases expanded, charging `budget`, building nothing.
fn measure(text: &str, budget: &mut Budget) -> Result<(), YamlError> {
    let nodes = Cell::new(budget.nodes);
    let bytes = Cell::new(budget.bytes);
    let exceeded = Cell::new(false);
    for de in serde_norway::Deserializer::from_str(text) {
        let measure = Measure {
            nodes: &nodes,
            bytes: &bytes,
            exceeded: &exceeded,
        };
        if let Err(e) = measure.deserialize(de) {
            // serde_norway stops replaying aliases past 100 times a document's events; that is
            // the same verdict as ours, reached first. Its error has no kind to match, only text.
            let repeats = e.to_string().starts_with("repetition limit exceeded");
            return Err(if exceeded.get() || repeats {
                YamlError::TooLarge
            } else {
                syntax(&e)
            });
        }
    }
    budget.nodes = nodes.get();
    budget.bytes = bytes.get();
    Ok(())
}

fn syntax(e: &serde_norway::Error) -> YamlError {
    YamlError::Syntax(crate::gitops::quote::cut(&e.to_string(), 200))
}

/// Why a file could not be read as text.
#[derive(Debug)]
pub enum ReadError {
    /// Larger than the limit: nothing past the limit was read.
    TooBig,
    /// A folder, FIFO or device where a file is expected.
    NotAFile,
    /// Not UTF-8.
    NotText,
    Io(std::io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::TooBig => f.write_str("it is too large"),
            ReadError::NotAFile => f.write_str("it is not a regular file"),
            ReadError::NotText => f.write_str("it is not UTF-8 text"),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Read a text file of at most `max` bytes. The limit is enforced on what is read, not on what
/// the metadata claims, so a file that grows meanwhile (or a device) cannot exceed it.
pub fn read_text_at_most(path: &Path, max: u64) -> Result<String, ReadError> {
    let f = std::fs::File::open(path).map_err(ReadError::Io)?;
    let meta = f.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile);
    }
    if meta.len() > max {
        return Err(ReadError::TooBig);
    }
    let mut bytes = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooBig);
    }
    String::from_utf8(bytes).map_err(|_| ReadError::NotText)
}

/// The 1-based line of the first YAML anchor (`&name`) or alias (`*name`) in `text`, if any.
///
/// A lexical scan, made to never miss one: `&` and `*` count wherever a node may start (line
/// start, after `- `, `: `, `? `, `[`, `{`, `,` or a tag), outside quoted scalars and comments.
/// Text that only looks like one (inside a block scalar, or a plain scalar continued on the next
/// line) is reported too, which a file that has no use for aliases can afford.
pub fn first_anchor_or_alias(text: &str) -> Option<usize> {
    let mut line = 1;
    let mut chars = text.chars().peekable();
    let mut quote: Option<char> = None;
    let mut node_may_start = true;
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
            if quote.is_none() {
                node_may_start = true;
            }
            continue;
        }
        if let Some(q) = quote {
            match c {
                '\\' if q == '"' => {
                    // An escaped character, even an escaped quote, stays inside the scalar.
                    if chars.peek() == Some(&'\n') {
                        line += 1;
                    }
                    chars.next();
                }
                // '' is an escaped quote inside a single-quoted scalar.
                '\'' if q == '\'' && chars.peek() == Some(&'\'') => {
                    chars.next();
                }
                _ if c == q => {
                    quote = None;
                    node_may_start = false;
                }
                _ => {}
            }
            continue;
        }
        let next_is_blank = matches!(chars.peek(), None | Some(' ' | '\t' | '\n' | '\r'));
        match c {
            ' ' | '\t' | '\r' => {}
            '#' => {
                // A comment runs to the end of the line (a '#' inside a plain scalar needs no
                // special care: skipping the rest of that line cannot hide a node start, since
                // the next line starts afresh).
                while chars.peek().is_some_and(|&n| n != '\n') {
                    chars.next();
                }
            }
            '&' | '*' if node_may_start => return Some(line),
            '"' | '\'' if node_may_start => quote = Some(c),
            '[' | '{' | ',' => node_may_start = true,
            ':' | '-' | '?' if next_is_blank => node_may_start = true,
            '!' if node_may_start => {
                // A tag: the node follows it.
                while chars.peek().is_some_and(|n| !n.is_whitespace()) {
                    chars.next();
                }
            }
            _ => node_may_start = false,
        }
    }
    None
}

/// Walks a document with its aliases expanded, charging each node to the budget and building
/// nothing. It stops at the first node that does not fit.
#[derive(Clone, Copy)]
struct Measure<'a> {
    nodes: &'a Cell<u64>,
    bytes: &'a Cell<u64>,
    exceeded: &'a Cell<bool>,
}

impl Measure<'_> {
    fn charge<E: de::Error>(self, bytes: usize) -> Result<(), E> {
        let bytes = bytes as u64;
        match (
            self.nodes.get().checked_sub(1),
            self.bytes.get().checked_sub(bytes),
        ) {
            (Some(n), Some(b)) => {
                self.nodes.set(n);
                self.bytes.set(b);
                Ok(())
            }
            _ => {
                self.exceeded.set(true);
                Err(E::custom("YAML too large once its aliases are expanded"))
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Measure<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Measure<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.charge(0)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.charge(0)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.charge(0)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.charge(0)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.charge(v.len())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.charge(0)
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.charge(0)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.charge(0)?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.charge(0)?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
    /// A tagged node (`!Tag value`) reaches a visitor as an enum: the tag, then the value.
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        use serde::de::VariantAccess;
        let ((), variant) = data.variant_seed(self)?;
        variant.newtype_variant_seed(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roomy() -> Budget {
        Budget {
            nodes: 1_000,
            bytes: 1 << 20,
        }
    }

    #[test]
    fn plain_documents_are_built_and_charged() {
        let mut b = roomy();
        let docs = documents("a: 1\nb: [x, yz]\n---\nc: !Tag d\n", &mut b).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["b"][1].as_str(), Some("yz"));
        assert!(b.nodes < 1_000 && b.bytes < 1 << 20);
    }

    #[test]
    fn aliases_count_at_every_use() {
        let big = "x".repeat(1000);
        let text = format!("a: &a \"{big}\"\nb: [*a, *a, *a, *a, *a]\n");
        let mut b = Budget {
            nodes: 1_000,
            bytes: 5_500,
        };
        assert_eq!(documents(&text, &mut b), Err(YamlError::TooLarge));
        let mut b = Budget {
            nodes: 1_000,
            bytes: 6_500,
        };
        assert!(documents(&text, &mut b).is_ok());
    }

    #[test]
    fn billion_laughs_stop_at_the_node_budget() {
        let mut text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n".to_string();
        for i in 1..9 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [{}]\n",
                vec![format!("*a{p}"); 10].join(", ")
            ));
        }
        let mut b = Budget {
            nodes: 100_000,
            bytes: 1 << 30,
        };
        assert_eq!(documents(&text, &mut b), Err(YamlError::TooLarge));
    }

    #[test]
    fn syntax_errors_are_cut() {
        let long = "y".repeat(10_000);
        let e = document::<Vec<String>>(&format!("k: \"{long}\"\n"), &mut roomy()).unwrap_err();
        match e {
            YamlError::Syntax(m) => assert!(m.chars().count() <= 201, "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn anchors_and_aliases_are_found() {
        for (text, line) in [
            ("a: &x 1\n", 1),
            ("a: 1\nb: *x\n", 2),
            ("- *x\n", 1),
            ("a: [1, *x]\n", 1),
            ("a: {k: &x v}\n", 1),
            ("a: !!str &x v\n", 1),
            ("a: \"q\"\nb: *x\n", 2),
            ("a: \"multi\n  line\"\nb: *x\n", 3),
            ("a: 'it''s'\nb: &y z\n", 2),
        ] {
            assert_eq!(first_anchor_or_alias(text), Some(line), "{text:?}");
        }
        for text in [
            "a: \"*not\"\n",
            "a: '&not'\n",
            "a: x*y\n",
            "a: b&c\n",
            "# *comment\na: 1 # &also\n",
            "a: \"esc \\\" *still inside\"\n",
            "workspaces: [{id: demo, tenant: acme}]\n",
        ] {
            assert_eq!(first_anchor_or_alias(text), None, "{text:?}");
        }
    }
}
