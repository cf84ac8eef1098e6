//! Server-side apply of ordered objects, phase by phase (`manifests::phases`): CRDs, then waited
//! `Established`; namespaces; cluster-scoped objects; namespaced objects, then their workloads
//! waited ready (`waits`); webhook and APIService registrations last.
//!
//! Each object is one `PATCH` with `application/apply-patch+yaml` and `fieldManager=appgear`,
//! preceded by a `GET` whose `resourceVersion` tells what the apply did: created (there was
//! none), unchanged (the server stored nothing new, so the version did not move: the API
//! server skips a no-op apply) or configured.
//!
//! `force` is off. A conflict means another field manager owns a field appgear sets: a user's
//! `kubectl edit`, or a controller (an autoscaler owning `spec.replicas`). Taking it silently
//! would undo their change on every `cluster up`; refusing names the object, the field and the
//! manager, and the hint says how to hand the field to appgear on purpose.

use super::super::manifests::{self, ClusterKinds, Object, Phase};
use super::super::waits;
use super::call::{api_error, api_for};
use super::resources::{Resource, Resources};
use super::wait::{self, Deadline, WaitTimes};
use crate::core::error::Result;
use kube::api::{Patch, PatchParams};

pub use super::call::FIELD_MANAGER;

/// What applying one object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Configured,
    Unchanged,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Configured => "configured",
            Outcome::Unchanged => "unchanged",
        }
    }
}

/// One applied object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub object: String,
    pub outcome: Outcome,
}

/// Applies objects to one cluster, remembering the custom kinds it learnt from CRDs so a later
/// stage can apply their objects.
pub struct Applier {
    client: kube::Client,
    resources: Resources,
    cluster_kinds: ClusterKinds,
    pub times: WaitTimes,
}

impl Applier {
    pub fn new(client: kube::Client, times: WaitTimes) -> Applier {
        Applier {
            client,
            resources: Resources::default(),
            cluster_kinds: ClusterKinds::default(),
            times,
        }
    }

    /// Apply `objects` (in any order: they are ordered here) and wait for them; `progress` is
    /// told each object as it is applied or waited for.
    pub async fn apply(
        &mut self,
        objects: Vec<Object>,
        progress: &dyn Fn(&str),
    ) -> Result<Vec<Applied>> {
        let ordered = manifests::order(objects, &mut self.cluster_kinds)?;
        self.resources.learn(&ordered);
        // Every kind is known before anything is applied: a typo must not leave half an add-on.
        let resolved: Vec<Resource> = ordered
            .iter()
            .map(|o| self.resources.of(o))
            .collect::<Result<_>>()?;
        let mut applied = Vec::new();
        let mut at = 0;
        for (phase, group) in manifests::phases(&ordered, &self.cluster_kinds) {
            let res = &resolved[at..at + group.len()];
            at += group.len();
            for (o, r) in group.iter().zip(res) {
                progress(&format!("applying {}", o.describe()));
                let outcome = self.apply_one(o, r).await?;
                applied.push(Applied {
                    object: o.describe(),
                    outcome,
                });
            }
            if matches!(phase, Phase::Crds | Phase::Namespaced) {
                let deadline = Deadline::after(self.times.timeout);
                for (o, r) in group.iter().zip(res) {
                    if waits::readiness(&o.value).is_some() {
                        progress(&format!("waiting for {}", o.describe()));
                        wait::ready(&self.client, o, r, &self.times, deadline).await?;
                    }
                }
            }
        }
        Ok(applied)
    }

    async fn apply_one(&self, o: &Object, r: &Resource) -> Result<Outcome> {
        let api = api_for(&self.client, r, o.namespace.as_deref());
        let before = api.get_opt(&o.name).await.map_err(|e| api_error(o, e))?;
        let params = PatchParams::apply(FIELD_MANAGER);
        let after = api
            .patch(&o.name, &params, &Patch::Apply(&o.value))
            .await
            .map_err(|e| api_error(o, e))?;
        Ok(match before {
            None => Outcome::Created,
            Some(b) if b.metadata.resource_version == after.metadata.resource_version => {
                Outcome::Unchanged
            }
            Some(_) => Outcome::Configured,
        })
    }
}
