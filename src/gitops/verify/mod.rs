//! `appgear verify`: static checks of rendered manifests (or any Kubernetes YAML) against the
//! spec's "Erros comuns", each under a stable rule id.

mod airbyte;
mod finding;
pub mod load;
pub mod object;
pub mod rules;

use serde::Serialize;

/// One rule of `appgear verify`. Ids are stable: scripts and docs refer to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    KongOnlyIngress,
    TenantLabel,
    CdeStorage,
    AirbyteResources,
    MultiplayerWebsocket,
    Policy,
    SuiteLayout,
    BuilderScaling,
}

impl Rule {
    pub const ALL: [Rule; 8] = [
        Rule::KongOnlyIngress,
        Rule::TenantLabel,
        Rule::CdeStorage,
        Rule::AirbyteResources,
        Rule::MultiplayerWebsocket,
        Rule::Policy,
        Rule::SuiteLayout,
        Rule::BuilderScaling,
    ];
    pub fn id(self) -> &'static str {
        match self {
            Rule::KongOnlyIngress => "FACTORY001",
            Rule::TenantLabel => "FACTORY002",
            Rule::CdeStorage => "FACTORY003",
            Rule::AirbyteResources => "FACTORY004",
            Rule::MultiplayerWebsocket => "FACTORY005",
            Rule::Policy => "FACTORY006",
            Rule::SuiteLayout => "FACTORY007",
            Rule::BuilderScaling => "FACTORY008",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Rule::KongOnlyIngress => "kong-only-ingress",
            Rule::TenantLabel => "tenant-label",
            Rule::CdeStorage => "cde-persistent-storage",
            Rule::AirbyteResources => "airbyte-limits-and-scaling",
            Rule::MultiplayerWebsocket => "multiplayer-websocket",
            Rule::Policy => "policy",
            Rule::SuiteLayout => "suite-layout",
            Rule::BuilderScaling => "builder-queue-scaling",
        }
    }
}

/// The object a finding is about.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectRef {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Finding {
    pub rule: &'static str,
    pub rule_name: &'static str,
    pub file: String,
    pub document: usize,
    pub object: ObjectRef,
    pub message: String,
    pub hint: String,
}
