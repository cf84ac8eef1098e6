//! `workspace add|remove|list`: the record in the home, and, when the cluster runs, the
//! workspace's objects applied (add) or its namespace deleted (remove --purge only). Its files
//! stay either way: the storage classes retain volumes, so they remain in `data/cluster`.

use super::super::api::apply::Applier;
use super::super::api::call::api_for;
use super::super::api::resources::Resources;
use super::super::api::wait::WaitTimes;
use super::super::stages::ClusterState;
use super::super::workspaces::{Change, Workspaces};
use super::context::{self, Context};
use super::render;
use crate::core::error::{Error, Result};
use crate::topology_a::home::Home;
use kube::api::DeleteParams;

/// What `workspace add` did.
pub struct Added {
    pub change: Change,
    pub namespace: String,
    /// Applied to the running cluster now (else at the next `cluster up`).
    pub applied: bool,
}

pub async fn add(home: &Home, id: &str, tenant: &str) -> Result<Added> {
    let _lock = home.lock("workspace add")?;
    let ctx = Context::load(home)?;
    let mut record = ctx.workspaces.clone();
    let change = record.add(id, tenant)?;
    let namespace = record.get(id).map(|w| w.id.namespace()).unwrap_or_default();
    record.save(&ctx.root)?;
    let mut applied = false;
    if let ClusterState::Running { .. } = context::observe(&ctx).await? {
        let objects: Vec<_> = render::suite(&ctx, &record.entries(), false)?
            .into_iter()
            .filter(|o| {
                o.namespace.as_deref() == Some(&namespace)
                    || (o.kind == "Namespace" && o.name == namespace)
            })
            .collect();
        let client = ctx.client().await?;
        let mut applier = Applier::new(client.clone(), WaitTimes::default());
        applier.apply(objects, &|_| {}).await?;
        // The suite now runs with every recorded workspace: the next plan says so.
        let ids: Vec<String> = record.entries().into_iter().map(|w| w.id).collect();
        super::record::mark(
            &client,
            &mut applier,
            super::record::entries_for_suite(env!("CARGO_PKG_VERSION"), &ids),
        )
        .await?;
        applied = true;
    }
    Ok(Added {
        change,
        namespace,
        applied,
    })
}

/// What `workspace remove` did.
pub struct Removed {
    pub namespace: String,
    pub deleted_namespace: bool,
}

pub async fn remove(home: &Home, id: &str, purge: bool) -> Result<Removed> {
    let _lock = home.lock("workspace remove")?;
    let ctx = Context::load(home)?;
    let mut record: Workspaces = ctx.workspaces.clone();
    let w = record.remove(id)?;
    let namespace = w.id.namespace();
    let mut deleted_namespace = false;
    if purge {
        if let ClusterState::Running { .. } = context::observe(&ctx).await? {
            let client = ctx.client().await?;
            let r = Resources::default()
                .find("v1", "Namespace")
                .ok_or_else(|| Error::internal("no Namespace resource"))?;
            match api_for(&client, &r, None)
                .delete(&namespace, &DeleteParams::default())
                .await
            {
                Ok(_) => deleted_namespace = true,
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    return Err(Error::not_ready(format!(
                        "cannot delete namespace {namespace}: {e}"
                    ))
                    .hint("run `appgear cluster status`; the workspace is still recorded"))
                }
            }
        }
    }
    record.save(&ctx.root)?;
    Ok(Removed {
        namespace,
        deleted_namespace,
    })
}
