//! The subset of the Compose specification that appgear executes, as serde types. Unknown keys are
//! refused (`deny_unknown_fields`): a key appgear would silently ignore is a stack that differs from
//! what the user wrote. Extension keys (`x-...`) are allowed, as in Compose.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComposeFile {
    pub name: Option<String>,
    pub services: BTreeMap<String, serde_norway::Value>,
    #[serde(default)]
    pub networks: BTreeMap<String, Option<ResourceDef>>,
    #[serde(default)]
    pub volumes: BTreeMap<String, Option<ResourceDef>>,
}

/// A top-level network or volume: both take an optional fixed name and labels.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ResourceDef {
    pub name: Option<String>,
    #[serde(default)]
    pub labels: Option<MapOrList>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDef {
    pub image: String,
    pub container_name: Option<String>,
    pub command: Option<StringOrList>,
    pub entrypoint: Option<StringOrList>,
    pub environment: Option<MapOrList>,
    #[serde(default)]
    pub ports: Vec<Scalar>,
    #[serde(default)]
    pub volumes: Vec<String>,
    pub networks: Option<NetworksDef>,
    pub depends_on: Option<DependsOnDef>,
    pub healthcheck: Option<HealthcheckDef>,
    pub restart: Option<String>,
    pub user: Option<Scalar>,
    pub working_dir: Option<String>,
    pub labels: Option<MapOrList>,
}

/// A YAML scalar taken as text (`8080`, `true` and `"x"` are all fine where Compose takes strings).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    pub fn text(&self) -> String {
        match self {
            Scalar::Str(s) => s.clone(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum StringOrList {
    String(String),
    List(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum MapOrList {
    Map(BTreeMap<String, Option<Scalar>>),
    List(Vec<String>),
}

impl MapOrList {
    /// `KEY: value` or `KEY=value`; `None` for a key with no value (`KEY` or `KEY:`), which Compose
    /// fills from the environment it runs in.
    pub fn pairs(&self) -> BTreeMap<String, Option<String>> {
        match self {
            MapOrList::Map(m) => m
                .iter()
                .map(|(k, v)| (k.clone(), v.as_ref().map(Scalar::text)))
                .collect(),
            MapOrList::List(l) => l
                .iter()
                .map(|item| match item.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (item.clone(), None),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum NetworksDef {
    List(Vec<String>),
    Map(BTreeMap<String, Option<ServiceNetworkDef>>),
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ServiceNetworkDef {
    #[serde(default)]
    pub aliases: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum DependsOnDef {
    List(Vec<String>),
    Map(BTreeMap<String, DependsOnEntry>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependsOnEntry {
    #[serde(default = "default_condition")]
    pub condition: String,
    #[serde(default)]
    pub restart: Option<bool>,
    #[serde(default)]
    pub required: Option<bool>,
}

fn default_condition() -> String {
    "service_started".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthcheckDef {
    pub test: Option<StringOrList>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<u32>,
    pub start_period: Option<String>,
    pub start_interval: Option<String>,
    #[serde(default)]
    pub disable: bool,
}
