//! Images this machine already has go into the node before anything asks for them: the offline
//! half of `appgear images save|load`. A laptop that loaded the archive (or pulled the images on
//! good Wi-Fi) brings the cluster up without a registry, as far as the images go.
//!
//! Only images referenced by tag can be served this way. Docker forgets an image's registry
//! digest on `docker load`, and containerd resolves `name:tag@sha256:…` by that digest, so an
//! image the suite pins by digest (core-redis) is still pulled, or served by
//! `APPGEAR_REGISTRY_MIRROR`.

use super::super::image::archive::{self, Topology, Wanted};
use super::super::kind::KindCli;
use super::super::pins;
use super::super::stages::Profile;
use crate::core::error::Result;
use crate::topology_a::stack::docker;
use std::collections::BTreeSet;

/// The pinned images of the profile that Docker holds under their pinned name, except those
/// that reach the node another way: the node image is the node, the suite image has its own
/// stage (`kind load image-archive` of the image appgear built), and an image pinned by digest
/// would be pulled anyway (see the module's comment).
pub fn to_load(wanted: &[Wanted], present: &BTreeSet<String>) -> Vec<String> {
    let node = pins::KIND_NODE.tagged();
    let suite = super::super::image::build::default_reference();
    wanted
        .iter()
        .filter(|w| w.digest.is_none() && w.name != node && w.name != suite)
        .filter(|w| present.contains(&w.name) || present.contains(&docker_name(&w.name)))
        .map(|w| w.name.clone())
        .collect()
}

/// How Docker lists an image of Docker Hub: `docker.io/library/busybox:1` is `busybox:1`,
/// `docker.io/rancher/x:1` is `rancher/x:1`.
fn docker_name(name: &str) -> String {
    let rest = name.strip_prefix("docker.io/").unwrap_or(name);
    rest.strip_prefix("library/").unwrap_or(rest).to_string()
}

/// Load what Docker holds of the profile's images into the node; returns their names.
pub async fn run(kind: &KindCli, cluster: &str, profile: Profile) -> Result<Vec<String>> {
    let wanted = archive::pinned_images(Topology::B, profile);
    let docker = docker::connect().await?;
    let listed = docker
        .list_images(None::<bollard::query_parameters::ListImagesOptions>)
        .await
        .map_err(|e| docker::api_error("list this machine's images", e))?;
    let present: BTreeSet<String> = listed
        .into_iter()
        .flat_map(|i| i.repo_tags.into_iter())
        .collect();
    let names = to_load(&wanted, &present);
    kind.load_docker_images(cluster, &names)?;
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn loads_present_tag_pinned_images_only() {
        let wanted = archive::pinned_images(Topology::B, Profile::Core);
        let lpp = pins::LOCAL_PATH.images[0].tagged();
        let present = names(&[
            // Docker lists Docker Hub images without `docker.io/`.
            "rancher/local-path-provisioner:v0.0.37",
            "busybox:1.37.0",
            &pins::KIND_NODE.tagged(),
            &super::super::super::image::build::default_reference(),
            &pins::REDIS_IMAGE.tagged(),
            "something/else:1",
        ]);
        let got = to_load(&wanted, &present);
        assert!(got.contains(&lpp), "{got:?}");
        assert!(got.contains(&"docker.io/library/busybox:1.37.0".to_string()));
        // The node, the suite image (its own stage) and core-redis (pinned by digest) are not.
        assert!(!got.contains(&pins::KIND_NODE.tagged()));
        assert!(!got.iter().any(|n| n.contains("appgear")), "{got:?}");
        assert!(!got.contains(&pins::REDIS_IMAGE.tagged()));
        assert_eq!(got.len(), 2, "{got:?}");
    }

    #[test]
    fn nothing_present_nothing_loaded() {
        let wanted = archive::pinned_images(Topology::B, Profile::Full);
        assert!(to_load(&wanted, &BTreeSet::new()).is_empty());
    }
}
