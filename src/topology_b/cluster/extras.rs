//! Objects appgear adds around the upstream add-ons, labelled like them: the storage classes the
//! suite's claims ask for, on local-path-provisioner, and core-redis. Rendered from the pins,
//! checked by the same splitter as everything else.

use super::super::addons::{LABEL_ADDON, LABEL_VERSION};
use super::super::manifests::{self, Object};
use super::super::pins;
use crate::core::error::Result;

/// `ceph-block` (ReadWriteOnce) and `ceph-filesystem` (ReadWriteMany, through the shared path
/// `storage::local_path` configures) on local-path-provisioner: the names the suite's PVCs use,
/// so the same manifests run here and on a cluster with Rook-Ceph. On one node every volume is
/// a folder under `data/cluster`, which is
/// what makes a workspace's files survive `cluster down` + `cluster up`; `Retain` keeps the
/// folder when a claim is deleted.
pub fn storage_classes() -> Result<Vec<Object>> {
    let v = pins::LOCAL_PATH.version;
    let class = |name: &str, mode: &str| {
        format!(
            "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: {name}\n  labels: {{{LABEL_ADDON}: local-path-provisioner, {LABEL_VERSION}: {v}}}\n  annotations: {{appgear.io/access-mode: {mode}}}\nprovisioner: rancher.io/local-path\nreclaimPolicy: Retain\nvolumeBindingMode: WaitForFirstConsumer\n"
        )
    };
    let text = format!(
        "{}---\n{}",
        class("ceph-block", "ReadWriteOnce"),
        class("ceph-filesystem", "ReadWriteMany")
    );
    manifests::split(&text, "appgear storage classes")
}

/// `core-redis` in `appgear-core`: one replica of the pinned image, no persistence of its own
/// (the gateway keeps documents in it; a laptop demo restarts clean).
pub fn core_redis() -> Result<Vec<Object>> {
    let image = pins::REDIS_IMAGE.reference();
    let v = pins::CORE_REDIS.version;
    let labels = format!(
        "{{app.kubernetes.io/name: core-redis, {LABEL_ADDON}: core-redis, {LABEL_VERSION}: {v}}}"
    );
    let text = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: appgear-core\n  labels: {labels}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: core-redis\n  namespace: appgear-core\n  labels: {labels}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app.kubernetes.io/name: core-redis}}}}\n  template:\n    metadata: {{labels: {labels}}}\n    spec:\n      containers:\n      - name: redis\n        image: {image}\n        args: [--save, '', --appendonly, 'no']\n        ports: [{{containerPort: 6379, name: redis}}]\n        readinessProbe: {{exec: {{command: [redis-cli, ping]}}, periodSeconds: 5}}\n        resources: {{requests: {{cpu: 50m, memory: 64Mi}}, limits: {{memory: 256Mi}}}}\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: core-redis\n  namespace: appgear-core\n  labels: {labels}\nspec:\n  selector: {{app.kubernetes.io/name: core-redis}}\n  ports: [{{name: redis, port: 6379, targetPort: redis}}]\n"
    );
    manifests::split(&text, "appgear core-redis")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extras_are_labelled_and_pinned() {
        let sc = storage_classes().unwrap();
        assert_eq!(
            sc.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(),
            ["ceph-block", "ceph-filesystem"]
        );
        let redis = core_redis().unwrap();
        assert_eq!(
            manifests::images(&redis),
            vec![pins::REDIS_IMAGE.reference()]
        );
        for o in sc.iter().chain(&redis) {
            assert!(
                o.value["metadata"]["labels"][LABEL_VERSION].is_string(),
                "{}",
                o.describe()
            );
        }
    }
}
