//! Every pinned thing of Topology B in ONE table: the kind binary and its node image, each
//! upstream add-on (release manifests or Helm chart) with the images it runs, and core-redis.
//! Bumping a version is an edit here and nowhere else.
//!
//! Where a pin's digest or SHA-256 came from is said next to it; a value that could not be read
//! from a real source is `None`, never guessed.

/// An image pinned by tag, and by digest where a real digest is known. A digest makes the pull
/// reproducible (a tag can be moved; official images are rebuilt under the same tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Image {
    /// As the upstream manifest writes it (`docker.io/rancher/...`, `kong`), so a rendered
    /// manifest can be compared with the pin without guessing registry defaults.
    pub repository: &'static str,
    pub tag: &'static str,
    /// `sha256:<64 hex>` of the image index (multi-platform manifest list).
    pub digest: Option<&'static str>,
}

impl Image {
    /// `repository:tag@sha256:…` when the digest is known, else `repository:tag`.
    pub fn reference(&self) -> String {
        match self.digest {
            Some(d) => format!("{}:{}@{d}", self.repository, self.tag),
            None => self.tagged(),
        }
    }
    /// `repository:tag`, what a manifest rendered without digests names.
    pub fn tagged(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }
}

/// One file appgear downloads (or finds in a mirror or the cache) for a pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Download {
    /// The file's name in a mirror folder and in the cache (`<addon>/<file>`).
    pub file: &'static str,
    /// Its official URL; `{os}` and `{arch}` are filled in for platform binaries.
    pub url: &'static str,
    /// SHA-256 of the bytes, only where they are stable and were computed from a real copy.
    pub sha256: Option<&'static str>,
}

/// Where a pinned thing comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A release binary for the host.
    Binary(Download),
    /// A container image pulled by the cluster (or loaded into it).
    Image(Image),
    /// Plain multi-document manifests published with a release, applied as they are.
    Release(&'static [Download]),
    /// A Helm chart from a chart repository, rendered by `helm template` with appgear's values
    /// into one manifest file (`rendered`, the name a mirror folder holds it under).
    Chart {
        repo: &'static str,
        chart: &'static str,
        release: &'static str,
        namespace: &'static str,
        /// The chart package (`<chart>-<version>.tgz`) as the repository's index lists it.
        package: Download,
        rendered: &'static str,
    },
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    /// The name appgear uses for it: a mirror folder, a cache folder, a label value.
    pub name: &'static str,
    pub version: &'static str,
    /// The project's home (its repository or documentation).
    pub project: &'static str,
    pub source: Source,
    /// The images the rendered manifests run (container specs), as they name them.
    pub images: &'static [Image],
    /// Images the add-on starts some other way (for example a helper pod described in a
    /// ConfigMap), which appgear pins and patches in because upstream does not.
    pub extra_images: &'static [Image],
    pub note: &'static str,
}

pub const KIND: Pin = Pin {
    name: "kind",
    version: "v0.33.0",
    project: "https://github.com/kubernetes-sigs/kind",
    source: Source::Binary(Download {
        file: "kind",
        url: "https://github.com/kubernetes-sigs/kind/releases/download/v0.33.0/kind-{os}-{arch}",
        // The release publishes kind-<os>-<arch>.sha256sum beside each binary; no copy could be
        // read here, so no value is pinned.
        sha256: None,
    }),
    images: &[],
    extra_images: &[],
    note: "the user installs kind; appgear checks its version (preflight)",
};

/// The node image kind v0.33.0 was released with for Kubernetes 1.35. Its digest is the one the
/// v0.33.0 release notes list ("Images pre-built for this release"); kind says to use the digest
/// to be sure of an image built for that release.
pub const KIND_NODE: Image = Image {
    repository: "kindest/node",
    tag: "v1.35.8",
    digest: Some("sha256:07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0"),
};

pub const NODE: Pin = Pin {
    name: "kind-node",
    version: "v1.35.8",
    project: "https://github.com/kubernetes-sigs/kind/releases/tag/v0.33.0",
    source: Source::Image(KIND_NODE),
    images: &[KIND_NODE],
    extra_images: &[],
    note: "Kubernetes 1.35: kind still writes kubeadm v1beta3 for it (v1beta4 from 1.36), which the kind config's patch relies on",
};

pub const LOCAL_PATH: Pin = Pin {
    name: "local-path-provisioner",
    version: "v0.0.37",
    project: "https://github.com/rancher/local-path-provisioner",
    source: Source::Release(&[Download {
        file: "local-path-storage.yaml",
        url: "https://raw.githubusercontent.com/rancher/local-path-provisioner/v0.0.37/deploy/local-path-storage.yaml",
        // sha256 of the file at tag v0.0.37 (git blob 25748bd9), computed from the verbatim
        // copy in ../shared/vendor/local-path-provisioner.
        sha256: Some("9781b39c24f3f651bd6d6e41b561e04e4904bbdb6d4f8c7a6009df3a702dcd65"),
    }]),
    images: &[Image {
        repository: "docker.io/rancher/local-path-provisioner",
        tag: "v0.0.37",
        digest: None,
    }],
    // The upstream ConfigMap's helper pod runs `docker.io/library/busybox` with no tag, that
    // is `latest`; the storage stage replaces it with this pin.
    extra_images: &[Image {
        repository: "docker.io/library/busybox",
        tag: "1.37.0",
        digest: None,
    }],
    note: "storage classes ceph-block (RWO) and ceph-filesystem (RWX) are appgear's configuration of it",
};

pub const KONG: Pin = Pin {
    name: "kong",
    version: "0.24.0",
    project: "https://github.com/Kong/charts",
    source: Source::Chart {
        repo: "https://charts.konghq.com",
        chart: "ingress",
        release: "kong",
        namespace: "kong",
        package: Download {
            file: "ingress-0.24.0.tgz",
            // Kong/charts publishes packages with chart-releaser (GitHub releases); the index
            // at charts.konghq.com lists the digest, which could not be read here.
            url:
                "https://github.com/Kong/charts/releases/download/ingress-0.24.0/ingress-0.24.0.tgz",
            sha256: None,
        },
        rendered: "kong-ingress.yaml",
    },
    // The chart's defaults name minor tags; pinning patch tags and digests means setting them
    // in appgear's values (see docs/topology-b.md).
    images: &[
        Image {
            repository: "kong/kubernetes-ingress-controller",
            tag: "3.5",
            digest: None,
        },
        Image {
            repository: "kong",
            tag: "3.9",
            digest: None,
        },
    ],
    extra_images: &[],
    note: "chart ingress 0.24.0 (kong 3.2.0 as controller and gateway), NodePorts 30080/30443",
};

pub const PROMETHEUS: Pin = Pin {
    name: "prometheus",
    version: "29.27.0",
    project: "https://github.com/prometheus-community/helm-charts",
    source: Source::Chart {
        repo: "https://prometheus-community.github.io/helm-charts",
        chart: "prometheus",
        release: "prometheus",
        namespace: "observability",
        package: Download {
            file: "prometheus-29.27.0.tgz",
            url: "https://github.com/prometheus-community/helm-charts/releases/download/prometheus-29.27.0/prometheus-29.27.0.tgz",
            sha256: None,
        },
        rendered: "prometheus.yaml",
    },
    images: &[
        Image {
            repository: "quay.io/prometheus-operator/prometheus-config-reloader",
            tag: "v0.93.1",
            digest: None,
        },
        Image {
            repository: "quay.io/prometheus/prometheus",
            tag: "v3.14.0",
            digest: None,
        },
    ],
    extra_images: &[],
    note: "every object named core-prometheus (server.fullnameOverride), Service port 9090",
};

pub const KEDA: Pin = Pin {
    name: "keda",
    version: "v2.20.2",
    project: "https://github.com/kedacore/keda",
    source: Source::Release(&[Download {
        file: "keda.yaml",
        url: "https://github.com/kedacore/keda/releases/download/v2.20.2/keda-2.20.2.yaml",
        // The mirror copy here is a re-render of the release, not its bytes: no checksum.
        sha256: None,
    }]),
    images: &[
        Image {
            repository: "ghcr.io/kedacore/keda",
            tag: "2.20.2",
            digest: None,
        },
        Image {
            repository: "ghcr.io/kedacore/keda-admission-webhooks",
            tag: "2.20.2",
            digest: None,
        },
        Image {
            repository: "ghcr.io/kedacore/keda-metrics-apiserver",
            tag: "2.20.2",
            digest: None,
        },
    ],
    extra_images: &[],
    note: "namespace keda, CRDs of keda.sh and eventing.keda.sh",
};

pub const KEDA_HTTP: Pin = Pin {
    name: "keda-http-add-on",
    version: "v0.15.0",
    project: "https://github.com/kedacore/http-add-on",
    // Only the full file: the -crds.yaml release file repeats its two CRDs.
    source: Source::Release(&[Download {
        file: "keda-add-ons-http-0.15.0.yaml",
        url: "https://github.com/kedacore/http-add-on/releases/download/v0.15.0/keda-add-ons-http-0.15.0.yaml",
        sha256: None,
    }]),
    // The official release file names these with digests (ko resolve); they are not known here.
    images: &[
        Image {
            repository: "ghcr.io/kedacore/http-add-on-interceptor",
            tag: "0.15.0",
            digest: None,
        },
        Image {
            repository: "ghcr.io/kedacore/http-add-on-operator",
            tag: "0.15.0",
            digest: None,
        },
        Image {
            repository: "ghcr.io/kedacore/http-add-on-scaler",
            tag: "0.15.0",
            digest: None,
        },
    ],
    extra_images: &[],
    note: "needs KEDA (namespace keda, keda.sh CRDs)",
};

/// Redis for the gateway's storage and backplane and the builder's queue. The digest is the
/// image index Dependabot resolved for `redis:8.8.1` on 2026-07-26 (envoyproxy/examples, commit
/// 6f4ec54, redis/Dockerfile-redis); it could not be checked against the registry here.
pub const REDIS_IMAGE: Image = Image {
    repository: "docker.io/library/redis",
    tag: "8.8.1",
    digest: Some("sha256:c88d347edef6249a6d2293f926f1eeb48bd40c57cbcd02c07f52e7f1fd2cb46b"),
};

pub const CORE_REDIS: Pin = Pin {
    name: "core-redis",
    version: "8.8.1",
    project: "https://hub.docker.com/_/redis",
    source: Source::Image(REDIS_IMAGE),
    images: &[REDIS_IMAGE],
    extra_images: &[],
    note: "Service core-redis.appgear-core:6379, appgear's own manifest",
};

pub const AIRBYTE: Pin = Pin {
    name: "airbyte",
    version: "2.2.0",
    project: "https://github.com/airbytehq/charts",
    source: Source::Chart {
        repo: "https://airbytehq.github.io/charts",
        chart: "airbyte",
        release: "airbyte",
        namespace: "factory-data",
        package: Download {
            file: "airbyte-2.2.0.tgz",
            url: "https://airbytehq.github.io/charts/airbyte-2.2.0.tgz",
            // The index lists packages by relative URL. SHA-256 computed from the published
            // package in ../shared/vendor/airbyte; it equals the index's digest.
            sha256: Some("2da7f32d2fdbb5e00fed4635cfbe51c8d7533c9d57966bed301a362be441fa9f"),
        },
        rendered: "airbyte.yaml",
    },
    // Rendered only with --with-airbyte: the images chart 2.2.0 runs with the suite's values
    // (read from `helm template` of the published package).
    images: &[
        Image {
            repository: "airbyte/bootloader",
            tag: "2.2.0",
            digest: None,
        },
        Image {
            repository: "airbyte/cron",
            tag: "2.2.0",
            digest: None,
        },
        Image {
            repository: "airbyte/manifest-server",
            tag: "7.23.7",
            digest: None,
        },
        Image {
            repository: "airbyte/server",
            tag: "2.2.0",
            digest: None,
        },
        Image {
            repository: "airbyte/worker",
            tag: "2.2.0",
            digest: None,
        },
        Image {
            repository: "airbyte/workload-api-server",
            tag: "2.2.0",
            digest: None,
        },
        Image {
            repository: "airbyte/workload-launcher",
            tag: "2.2.0",
            digest: None,
        },
        Image {
            repository: "temporalio/auto-setup",
            tag: "1.27.2",
            digest: None,
        },
    ],
    extra_images: &[],
    note: "chart V2, optional (--with-airbyte / --profile full)",
};

/// Vault 2.0.4, the app version of chart 0.34.1 (its Chart.yaml and values.yaml at tag v0.34.1
/// of hashicorp/vault-helm, released 2026-08-13). The server and the agent the injector adds to
/// the suite's pods run the same image.
pub const VAULT_IMAGE: Image = Image {
    repository: "hashicorp/vault",
    tag: "2.0.4",
    digest: None,
};

/// The agent injector (vault-k8s) the chart 0.34.1 defaults to.
pub const VAULT_INJECTOR_IMAGE: Image = Image {
    repository: "hashicorp/vault-k8s",
    tag: "1.7.6",
    digest: None,
};

pub const VAULT: Pin = Pin {
    name: "vault",
    version: "0.34.1",
    project: "https://github.com/hashicorp/vault-helm",
    source: Source::Chart {
        repo: "https://helm.releases.hashicorp.com",
        chart: "vault",
        release: "vault",
        namespace: "vault",
        package: Download {
            file: "vault-0.34.1.tgz",
            // HashiCorp's chart repository serves its packages beside its index; the index's
            // digest could not be read here.
            url: "https://helm.releases.hashicorp.com/vault-0.34.1.tgz",
            sha256: None,
        },
        rendered: "vault.yaml",
    },
    images: &[VAULT_IMAGE, VAULT_INJECTOR_IMAGE],
    extra_images: &[],
    note: "installed before the suite by default (--without-vault leaves it out): dev mode + agent injector, values in assets/addons/vault/values.yaml",
};

/// The Argo CD image of the v3.5.1 release manifests.
pub const ARGOCD_IMAGE: Image = Image {
    repository: "quay.io/argoproj/argocd",
    tag: "v3.5.1",
    digest: None,
};

pub const ARGOCD: Pin = Pin {
    name: "argocd",
    version: "v3.5.1",
    project: "https://github.com/argoproj/argo-cd",
    source: Source::Release(&[Download {
        file: "core-install.yaml",
        url:
            "https://raw.githubusercontent.com/argoproj/argo-cd/v3.5.1/manifests/core-install.yaml",
        // sha256 of manifests/core-install.yaml at tag v3.5.1, computed from the file in a
        // clone of argoproj/argo-cd (what raw.githubusercontent.com serves for the tag).
        sha256: Some("cb6bbcc84e1ab601f43364afd401fb0a7831536d07da74393c9edb1196f80500"),
    }]),
    // As core-install.yaml v3.5.1 names them (no digests there).
    images: &[
        ARGOCD_IMAGE,
        Image {
            repository: "public.ecr.aws/docker/library/redis",
            tag: "8.2.3-alpine",
            digest: None,
        },
    ],
    extra_images: &[],
    note: "optional (--with-argocd): the core install (no UI, no API server) in namespace argocd",
};

/// The in-cluster Git server Argo CD clones the rendered tree from. Debian's `git` package (in
/// the official buildpack-deps `scm` variant) carries `git daemon`; Alpine's splits it into
/// `git-daemon`, which the common Alpine git images leave out.
pub const GIT_SERVER_IMAGE: Image = Image {
    repository: "docker.io/library/buildpack-deps",
    tag: "trixie-scm",
    digest: None,
};

pub const GIT_SERVER: Pin = Pin {
    name: "git-server",
    version: "trixie-scm",
    project: "https://hub.docker.com/_/buildpack-deps",
    source: Source::Image(GIT_SERVER_IMAGE),
    images: &[GIT_SERVER_IMAGE],
    extra_images: &[],
    note:
        "optional (--with-argocd): `git daemon` serving the rendered tree, appgear's own manifest",
};

/// The table, in the order the stages use the pins.
pub const PINS: &[Pin] = &[
    KIND, NODE, LOCAL_PATH, KONG, PROMETHEUS, KEDA, KEDA_HTTP, CORE_REDIS, AIRBYTE, VAULT, ARGOCD,
    GIT_SERVER,
];

/// The pin named `name`.
pub fn pin(name: &str) -> Option<&'static Pin> {
    PINS.iter().find(|p| p.name == name)
}

/// Every image of the table (node image, add-ons' images, helper images, core-redis), each
/// once, in table order: what an offline images archive must hold.
pub fn all_images() -> Vec<Image> {
    let mut out: Vec<Image> = Vec::new();
    for p in PINS {
        let own = match p.source {
            Source::Image(i) => Some(i),
            _ => None,
        };
        for i in own.iter().chain(p.images).chain(p.extra_images) {
            if !out.contains(i) {
                out.push(*i);
            }
        }
    }
    out
}

/// True for `sha256:` followed by 64 lower-case hex digits.
pub fn is_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(is_sha256_hex)
}

/// True for 64 lower-case hex digits.
pub fn is_sha256_hex(h: &str) -> bool {
    h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_image_is_pinned_by_tag_and_known_digests_are_well_formed() {
        let images = all_images();
        assert!(images.len() >= 14, "{images:?}");
        for i in &images {
            assert!(!i.tag.is_empty(), "{i:?} has no tag");
            assert_ne!(i.tag, "latest", "{i:?}");
            assert!(!i.repository.contains(':') || i.repository.contains('/'));
            assert!(
                !i.repository.contains('@') && !i.tag.contains('@'),
                "the digest goes in its own field: {i:?}"
            );
            if let Some(d) = i.digest {
                assert!(is_digest(d), "{i:?}");
                assert!(i.reference().ends_with(&format!(":{}@{d}", i.tag)));
            }
            // Topology A's image rule (exact tag or digest, never latest) holds for every pin.
            crate::topology_a::settings::valid_image(&i.reference())
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn the_node_image_and_core_redis_carry_their_digests() {
        assert_eq!(
            KIND_NODE.reference(),
            "kindest/node:v1.35.8@sha256:07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0"
        );
        assert!(REDIS_IMAGE.digest.is_some());
        assert_eq!(pin("kind").map(|p| p.version), Some("v0.33.0"));
    }

    #[test]
    fn names_are_unique_labels_and_checksums_are_hex() {
        let mut names: Vec<&str> = PINS.iter().map(|p| p.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), PINS.len());
        for p in PINS {
            assert!(crate::core::names::is_label(p.name), "{}", p.name);
            assert!(p.project.starts_with("https://"), "{}", p.name);
            let downloads: Vec<Download> = match p.source {
                Source::Binary(d) => vec![d],
                Source::Release(ds) => ds.to_vec(),
                Source::Chart { package, .. } => vec![package],
                Source::Image(_) => vec![],
            };
            for d in downloads {
                assert!(d.url.starts_with("https://"), "{d:?}");
                assert!(!d.file.contains('/') && !d.file.starts_with('.'), "{d:?}");
                if let Some(h) = d.sha256 {
                    assert!(is_sha256_hex(h), "{d:?}");
                }
            }
        }
    }

    #[test]
    fn digest_syntax() {
        assert!(is_digest(&format!("sha256:{}", "a".repeat(64))));
        assert!(!is_digest(&format!("sha256:{}", "A".repeat(64))));
        assert!(!is_digest(&format!("sha512:{}", "a".repeat(64))));
        assert!(!is_digest("sha256:abc"));
    }
}
