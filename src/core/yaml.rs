//! YAML read from disk or the network, within bounds: the one reader of every product.
//!
//! - `read_bytes` / `read_text`: a file of at most a given size, never through a link (unless
//!   the caller says the path is the user's own choice), never a FIFO or device. The limit is
//!   enforced on what is read, not on what the metadata claims, so a file that grows meanwhile
//!   cannot exceed it.
//! - `anchors::find`: the first YAML anchor (`&name`) or alias (`*name`), for files that have no
//!   use for them (manifests, lists of workspaces) and refuse them before any parsing.
//! - `documents` / `document`: parsing charged against a `Budget`. A YAML alias repeats the node
//!   its anchor names, and serde_norway copies every repetition into the value it builds: a 1 MB
//!   file with one large scalar aliased at every use, or nested aliases ("billion laughs"),
//!   stands for gigabytes. So the text is first measured with its aliases expanded (the
//!   measuring builds nothing: a scalar costs its length, whatever its size), and built into
//!   values only when that expansion fits.

pub mod anchors;

pub use anchors::{find as first_anchor_or_alias, Found};

use serde::de::{self, Deserialize, DeserializeSeed, Visitor};
use serde_norway::Value;
use std::cell::Cell;
use std::fmt;
use std::io::Read;
use std::path::Path;

/// Whether the last component of a path may be a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// A link is refused (`ReadError::NotAFile`): the path is in a folder appgear or someone
    /// else controls (a home, a mirror, the cache).
    Refuse,
    /// A link is followed: the path is one the user gave by name, or one a walk already
    /// checked stays inside its tree.
    Follow,
}

/// Why a file could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// Larger than the limit (in bytes): nothing past the limit was read.
    TooBig(u64),
    /// A link (when refused), folder, FIFO or device where a file is expected.
    NotAFile,
    /// Not UTF-8.
    NotText,
    Io(std::io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::TooBig(max) => write!(f, "it is larger than {}", size(*max)),
            ReadError::NotAFile => f.write_str("it is a link or not a regular file"),
            ReadError::NotText => f.write_str("it is not UTF-8 text"),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// `max` for people: "16 MiB", "512 KiB", "100 bytes".
pub fn size(max: u64) -> String {
    if max >= 1 << 20 && max.is_multiple_of(1 << 20) {
        format!("{} MiB", max >> 20)
    } else if max >= 1 << 10 && max.is_multiple_of(1 << 10) {
        format!("{} KiB", max >> 10)
    } else {
        format!("{max} bytes")
    }
}

/// The file's bytes, or `None` when it does not exist.
pub fn read_bytes(path: &Path, max: u64, links: Links) -> Result<Option<Vec<u8>>, ReadError> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
    let mut flags = libc::O_NONBLOCK;
    if links == Links::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    let open = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path);
    let file = match open {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(ReadError::NotAFile),
        Err(e) => return Err(ReadError::Io(e)),
    };
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile);
    }
    if meta.len() > max {
        return Err(ReadError::TooBig(max));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // take() bounds a file that grows while it is read.
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooBig(max));
    }
    Ok(Some(bytes))
}

/// The file's text, or `None` when it does not exist.
pub fn read_text(path: &Path, max: u64, links: Links) -> Result<Option<String>, ReadError> {
    match read_bytes(path, max, links)? {
        None => Ok(None),
        Some(b) => String::from_utf8(b)
            .map(Some)
            .map_err(|_| ReadError::NotText),
    }
}

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
    YamlError::Syntax(crate::core::quote::cut(&e.to_string(), 200))
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

    #[test]
    fn reads_regular_files_only_and_within_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.yaml");
        std::fs::write(&f, "kind: x\n").unwrap();
        let read = |p: &Path, max, links| read_bytes(p, max, links);
        assert_eq!(read(&f, 100, Links::Refuse).unwrap().unwrap(), b"kind: x\n");
        assert!(read(&dir.path().join("none"), 100, Links::Refuse)
            .unwrap()
            .is_none());
        assert!(matches!(
            read(&f, 3, Links::Refuse),
            Err(ReadError::TooBig(3))
        ));

        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(matches!(
            read(&link, 100, Links::Refuse),
            Err(ReadError::NotAFile)
        ));
        assert!(read(&link, 100, Links::Follow).unwrap().is_some());
        assert!(matches!(
            read(dir.path(), 100, Links::Follow),
            Err(ReadError::NotAFile)
        ));

        std::fs::write(&f, [0xff, 0xfe]).unwrap();
        assert!(matches!(
            read_text(&f, 100, Links::Refuse),
            Err(ReadError::NotText)
        ));
        assert_eq!(size(16 << 20), "16 MiB");
        assert_eq!(size(1000), "1000 bytes");
    }

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
}
