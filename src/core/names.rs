//! Names every product shares, with ONE rule each: DNS-1123 labels and subdomains, the workspace
//! id, the tenant id and the domain. A value that passes here is safe to put into a Kubernetes
//! name, a label, a host name, a Redis key or a compose label, whichever product it goes to.

use crate::core::error::{Error, Result};
use crate::core::quote::quoted;

/// The longest value quoted back in full; no valid name comes near it (a DNS label has at most
/// 63 characters), and a mistaken megabyte must not become a megabyte-long message.
const QUOTE_MAX: usize = 64;

/// Kubernetes names (and label values used as names) are DNS-1123 labels: at most 63 characters.
pub const LABEL_MAX: usize = 63;
/// `ws-<id>-factory` (the workspace's namespace in Topology B) must itself be a DNS-1123 label,
/// which leaves 52 characters for the id. The strictest of every product's needs, so it is the
/// rule for all of them: an id that works in one product works in every other.
pub const WORKSPACE_ID_MAX: usize = LABEL_MAX - "ws--factory".len();
/// The label value that marks shared objects (Airbyte, the Argo CD Application).
pub const GLOBAL: &str = "global";

/// A DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or
/// digit, at most 63 characters.
pub fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= LABEL_MAX
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A DNS-1123 subdomain: dot-separated labels, at most 253 characters.
pub fn is_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_label)
}

/// A workspace id: a DNS-1123 label short enough that `ws-<id>-factory` is one too.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WorkspaceId(String);

impl WorkspaceId {
    pub fn parse(s: &str) -> Result<Self> {
        if !is_label(s) {
            return Err(Error::bad_input(format!(
                "workspace id {} is not a DNS-1123 label",
                quoted(s, QUOTE_MAX)
            ))
            .hint("use lower-case letters, digits and '-', starting and ending with a letter or digit, e.g. demo or team-a"));
        }
        if s.len() > WORKSPACE_ID_MAX {
            return Err(Error::bad_input(format!(
                "workspace id {s:?} is too long: namespace ws-{s}-factory would have {} characters, the limit is {LABEL_MAX}",
                s.len() + "ws--factory".len()
            ))
            .hint(format!("use a workspace id of at most {WORKSPACE_ID_MAX} characters")));
        }
        if s == GLOBAL {
            return Err(Error::bad_input("workspace id \"global\" is reserved")
                .hint("\"global\" marks the shared Airbyte; pick another workspace id"));
        }
        Ok(WorkspaceId(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The namespace the workspace's Factory objects live in.
    pub fn namespace(&self) -> String {
        format!("ws-{}-factory", self.0)
    }
}

/// A tenant id: a DNS-1123 label (it is a label value and a FinOps key), never `global`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(s: &str) -> Result<Self> {
        if !is_label(s) {
            return Err(Error::bad_input(format!(
                "tenant id {} is not a DNS-1123 label",
                quoted(s, QUOTE_MAX)
            ))
            .hint("use lower-case letters, digits and '-', at most 63 characters, e.g. acme"));
        }
        if s == GLOBAL {
            return Err(Error::bad_input(
                "tenant id \"global\" is reserved for the shared Airbyte",
            )
            .hint("give each workspace its real tenant id, so its costs can be attributed"));
        }
        Ok(TenantId(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The DNS domain the Ingress hosts hang from (`<workspace>.<domain>`, `airbyte.<domain>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain(String);

impl Domain {
    pub fn parse(s: &str) -> Result<Self> {
        // Leave room for the longest prefix ("<52-char id>.").
        if !is_subdomain(s) || s.len() + WORKSPACE_ID_MAX + 1 > 253 {
            return Err(
                Error::bad_input(format!("domain {} is not a DNS name", quoted(s, 253)))
                    .hint("use lower-case labels separated by dots, e.g. factory.example.com"),
            );
        }
        Ok(Domain(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "X".repeat(100_000);
        for e in [
            WorkspaceId::parse(&long).unwrap_err(),
            TenantId::parse(&long).unwrap_err(),
            Domain::parse(&long).unwrap_err(),
        ] {
            assert!(e.message.len() < 400, "{}", e.message.len());
            assert!(e.message.contains("(100000 characters)"), "{}", e.message);
        }
        let e = WorkspaceId::parse("Demo").unwrap_err();
        assert!(e.message.contains("\"Demo\""), "{}", e.message);
    }
}
