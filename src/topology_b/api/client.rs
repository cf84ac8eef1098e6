//! The one place a Kubernetes client is made: from the kubeconfig `kind` wrote into the home
//! (never `~/.kube/config`, which may point at a production cluster), for the kind cluster's
//! context only.

use crate::core::error::{Error, Kind, Result};
use crate::core::yaml::{self, Links, ReadError};
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::Path;

/// A kubeconfig holds a few certificates; nothing valid comes near this.
const KUBECONFIG_MAX: u64 = 1 << 20;

/// A client for `context` of the kubeconfig at `path`.
pub async fn connect(path: &Path, context: &str) -> Result<kube::Client> {
    let missing = || {
        Error::not_ready(format!("there is no kubeconfig at {}", path.display()))
            .hint("run `appgear cluster up` first: it creates the cluster and writes its kubeconfig there")
    };
    // In the home, which may belong to someone else than the user running appgear: no link.
    let text = yaml::read_text(path, KUBECONFIG_MAX, Links::Refuse)
        .map_err(|e| match e {
            ReadError::Io(e) => Error::new(
                Kind::NotReady,
                format!("cannot read {}: {e}", path.display()),
            )
            .hint("check that the home is readable by you")
            .cause(e),
            e => Error::bad_input(format!("cannot read kubeconfig {}: {e}", path.display()))
                .hint("remove it and run `appgear cluster up`, which writes it again"),
        })?
        .ok_or_else(missing)?;
    let invalid = |e: kube::config::KubeconfigError| {
        Error::bad_input(format!("kubeconfig {} is not usable: {e}", path.display()))
            .hint("remove it and run `appgear cluster up`, which writes it again")
    };
    let kubeconfig = Kubeconfig::from_yaml(&text).map_err(invalid)?;
    let options = KubeConfigOptions {
        context: Some(context.to_string()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(invalid)?;
    crate::core::tls::use_ring();
    kube::Client::try_from(config).map_err(|e| {
        Error::not_ready(format!(
            "cannot make a Kubernetes client from {}: {e}",
            path.display()
        ))
        .hint("run `appgear cluster up` again; it rewrites the kubeconfig")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(r: Result<kube::Client>) -> Error {
        match r {
            Ok(_) => panic!("a client was made"),
            Err(e) => e,
        }
    }

    #[tokio::test]
    async fn a_missing_or_linked_kubeconfig_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kubeconfig");
        let e = refused(connect(&p, "kind-appgear").await);
        assert_eq!(e.kind, Kind::NotReady);
        assert!(e.hint.unwrap().contains("cluster up"));

        std::fs::write(dir.path().join("real"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), &p).unwrap();
        let e = refused(connect(&p, "kind-appgear").await);
        assert_eq!(e.kind, Kind::BadInput, "{}", e.message);
    }

    #[tokio::test]
    async fn the_kind_context_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kubeconfig");
        std::fs::write(
            &p,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kind-appgear\n  cluster: {server: 'https://127.0.0.1:6443', insecure-skip-tls-verify: true}\nusers:\n- name: kind-appgear\n  user: {token: t}\ncontexts:\n- name: kind-appgear\n  context: {cluster: kind-appgear, user: kind-appgear}\ncurrent-context: kind-appgear\n",
        )
        .unwrap();
        let client = connect(&p, "kind-appgear").await.unwrap();
        assert_eq!(client.default_namespace(), "default");
        let e = refused(connect(&p, "kind-other").await);
        assert_eq!(e.kind, Kind::BadInput);
    }
}
