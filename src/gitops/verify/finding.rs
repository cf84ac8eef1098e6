//! How a rule words a finding: one place that fills in where it was found, shared by
//! `rules` and `airbyte` (which must not import each other).

use super::object::Object;
use super::{Finding, Rule};
use crate::core::quote;

/// A finding of `rule` about `o`, with what is wrong and how to fix it.
pub(super) fn finding(rule: Rule, o: &Object, message: String, hint: &str) -> Finding {
    Finding {
        rule: rule.id(),
        rule_name: rule.name(),
        file: o.doc.file.clone(),
        document: o.doc.index,
        object: o.reference(),
        message,
        hint: hint.to_string(),
    }
}

/// A value as a message quotes it (cut, since it comes from the checked files), or `missing`.
pub(super) fn show(v: Option<&str>) -> String {
    v.map_or("missing".to_string(), |s| quote::quoted(s, 64))
}
