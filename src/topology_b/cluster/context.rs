//! Everything a cluster command reads before it acts: the settings (`.env` with the shell over
//! it, or the defaults before `appgear init`), the recorded workspaces, the home's paths, and
//! the cluster as kind and Docker report it.

use super::super::kind::{self, KindCli};
use super::super::settings::ClusterSettings;
use super::super::stages::ClusterState;
use super::super::workspaces::Workspaces;
use crate::core::error::Result;
use crate::core::names::Domain;
use crate::topology_a::home::Home;
use crate::topology_a::settings::Shell;
use std::path::PathBuf;

/// A setting's value by key: the shell's, else `.env`'s.
type Lookup = Box<dyn Fn(&str) -> Option<String>>;

pub struct Context {
    pub root: PathBuf,
    pub settings: ClusterSettings,
    pub domain: Domain,
    pub workspaces: Workspaces,
}

impl Context {
    pub fn load(home: &Home) -> Result<Context> {
        let lookup: Lookup = if home.env_path().exists() {
            let s = crate::topology_a::env_store::settings(home)?;
            Box::new(move |k| s.lookup(k).map(str::to_string))
        } else {
            let shell = Shell::current();
            Box::new(move |k| shell.get(k).map(str::to_string))
        };
        let settings = ClusterSettings::from_lookup(&lookup)?;
        // The suite's hosts hang from Topology A's domain: one setting for both topologies.
        let domain = lookup("FACTORY_DOMAIN")
            .filter(|d| !d.trim().is_empty())
            .or_else(|| {
                crate::topology_a::keys::key("FACTORY_DOMAIN")
                    .and_then(|k| k.default)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "factory.dev.appgear.local".to_string());
        Ok(Context {
            root: home.root().to_path_buf(),
            settings,
            domain: Domain::parse(&domain)?,
            workspaces: Workspaces::load(home.root())?,
        })
    }
    pub fn kubeconfig(&self) -> PathBuf {
        self.root.join(kind::KUBECONFIG)
    }
    pub fn kind_config(&self) -> PathBuf {
        self.root.join(super::super::kind_config::CONFIG_FILE)
    }
    pub fn storage(&self) -> PathBuf {
        self.root.join(super::super::kind_config::STORAGE_DIR)
    }
    pub fn name(&self) -> &str {
        self.settings.name.as_str()
    }
    /// The node container kind names after the cluster.
    pub fn node(&self) -> String {
        format!("{}-control-plane", self.name())
    }
    /// A client for the cluster's API, from the home's kubeconfig.
    pub async fn client(&self) -> Result<kube::Client> {
        super::super::api::client::connect(&self.kubeconfig(), &self.settings.name.context()).await
    }
}

/// The cluster's state: absent when kind does not list it; else its node container's state and
/// image as Docker reports them. Without kind on PATH there can be no cluster of ours.
pub async fn observe(ctx: &Context) -> Result<ClusterState> {
    let Ok(kind) = KindCli::find() else {
        return Ok(ClusterState::Absent);
    };
    if !kind.clusters()?.iter().any(|c| c == ctx.name()) {
        return Ok(ClusterState::Absent);
    }
    let docker = crate::topology_a::stack::docker::connect().await?;
    let node = docker.inspect_container(&ctx.node(), None).await.ok();
    let running = node
        .as_ref()
        .and_then(|n| n.state.as_ref())
        .and_then(|s| s.running)
        .unwrap_or(false);
    let image = node
        .and_then(|n| n.config)
        .and_then(|c| c.image)
        .unwrap_or_default();
    Ok(if running {
        ClusterState::Running { node_image: image }
    } else {
        ClusterState::Stopped
    })
}
