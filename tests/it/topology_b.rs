//! Topology B's sans-IO core on real upstream data: `../shared/vendor` (or APPGEAR_SHARED/vendor)
//! is used as the add-ons mirror, in place, exactly as `APPGEAR_ADDONS_MIRROR` would point at it.
//! Nothing from it is copied into the project; the cache these tests write is a temporary home.

use crate::common::shared;
use appgear::topology_b::addons::Addon;
use appgear::topology_b::cache::{Cache, Entry};
use appgear::topology_b::kind_config;
use appgear::topology_b::manifests::{self, ClusterKinds, Object, Phase};
use appgear::topology_b::mirror::{self, FileSource, Folder, Found};
use appgear::topology_b::pins;
use appgear::topology_b::supply::{self, Offline, Origin};
use std::path::{Path, PathBuf};

fn vendor() -> PathBuf {
    let v = shared().join("vendor");
    assert!(
        v.join("README.md").is_file(),
        "{} not found: set APPGEAR_SHARED to the shared folder that holds vendor/",
        v.display()
    );
    v
}

fn supplied(name: &str) -> supply::Supplied {
    let home = tempfile::tempdir().unwrap();
    let m = Folder(vendor());
    supply::supply(
        Addon::named(name).unwrap(),
        Some(&m as &dyn FileSource),
        &Cache::in_home(home.path()),
        &Offline,
    )
    .unwrap_or_else(|e| panic!("{name}: {} ({:?})", e.message, e.hint))
}

fn ordered(objects: Vec<Object>) -> (Vec<Object>, ClusterKinds) {
    let mut cluster = ClusterKinds::default();
    let o = manifests::order(objects, &mut cluster).unwrap();
    (o, cluster)
}

fn count(objects: &[Object], kind: &str) -> usize {
    objects.iter().filter(|o| o.kind == kind).count()
}

#[test]
fn the_vendor_folder_is_a_mirror_of_every_pinned_addon() {
    // Documents per add-on as vendor/README.md lists them; charts get their namespace added.
    let expected = [
        ("local-path-provisioner", 9),
        ("kong", 29 + 1),
        ("prometheus", 6 + 1),
        ("keda", 24),
        ("keda-http-add-on", 23),
    ];
    for (name, n) in expected {
        let s = supplied(name);
        assert!(
            matches!(&s.origin, Origin::Mirror(m) if m.ends_with("vendor")),
            "{:?}",
            s.origin
        );
        assert_eq!(s.objects.len(), n, "{name}");
        assert!(matches!(s.found, Found::Manifests(_)));
    }
    // Airbyte's mirror folder holds the published chart package, checked against its pin.
    let a = supplied("airbyte");
    assert!(
        matches!(&a.found, Found::Package(p) if p.name == "airbyte-2.2.0.tgz"),
        "{:?}",
        a.origin
    );
    assert!(a.objects.is_empty());
}

#[test]
fn the_pinned_checksum_of_local_path_provisioner_is_the_vendor_files() {
    let bytes =
        std::fs::read(vendor().join("local-path-provisioner/local-path-storage.yaml")).unwrap();
    let pin = Addon::named("local-path-provisioner").unwrap();
    assert_eq!(
        pin.pinned_sha256("local-path-storage.yaml"),
        Some(appgear::core::digest::sha256_hex(&bytes).as_str())
    );
}

#[test]
fn the_images_of_every_addon_are_its_pins() {
    for name in [
        "local-path-provisioner",
        "kong",
        "prometheus",
        "keda",
        "keda-http-add-on",
    ] {
        let s = supplied(name);
        let mut found = manifests::images(&s.objects);
        let mut pinned: Vec<String> = s.addon.0.images.iter().map(|i| i.tagged()).collect();
        found.sort();
        pinned.sort();
        assert_eq!(found, pinned, "{name}");
    }
    // The helper pod image local-path-provisioner describes in its ConfigMap is untagged
    // upstream; appgear pins one to put in its place.
    let lp = supplied("local-path-provisioner");
    let cm = lp.objects.iter().find(|o| o.kind == "ConfigMap").unwrap();
    let helper = cm.value["data"]["helperPod.yaml"].as_str().unwrap();
    assert!(
        helper.contains("image: docker.io/library/busybox\n"),
        "{helper}"
    );
    assert_eq!(
        pins::LOCAL_PATH.extra_images[0].repository,
        "docker.io/library/busybox"
    );
}

#[test]
fn keda_is_ordered_crds_namespace_cluster_scoped_namespaced_then_registrations() {
    let (o, cluster) = ordered(supplied("keda").objects);
    let kinds: Vec<&str> = o.iter().map(|o| o.kind.as_str()).collect();
    assert_eq!(kinds[..6], ["CustomResourceDefinition"; 6]);
    assert_eq!(kinds[6], "Namespace");
    assert_eq!(o[6].name, "keda");
    // The two cluster-scoped custom resource kinds are learnt from KEDA's own CRDs.
    assert!(cluster.contains("keda.sh", "ClusterTriggerAuthentication"));
    assert!(cluster.contains("eventing.keda.sh", "ClusterCloudEventSource"));
    assert!(!cluster.contains("keda.sh", "ScaledObject"));
    // The webhook and the external-metrics APIService come last, after the Deployments that
    // serve them.
    assert_eq!(
        kinds[kinds.len() - 2..],
        ["APIService", "ValidatingWebhookConfiguration"]
    );
    let last_deployment = kinds.iter().rposition(|k| *k == "Deployment").unwrap();
    let first_service = kinds.iter().position(|k| *k == "Service").unwrap();
    let first_sa = kinds.iter().position(|k| *k == "ServiceAccount").unwrap();
    let last_cluster_role_binding = kinds
        .iter()
        .rposition(|k| *k == "ClusterRoleBinding")
        .unwrap();
    assert!(last_cluster_role_binding < first_sa && first_sa < first_service);
    assert!(first_service < last_deployment && last_deployment < kinds.len() - 2);
    let phases: Vec<(Phase, usize)> = manifests::phases(&o, &cluster)
        .iter()
        .map(|(p, g)| (*p, g.len()))
        .collect();
    assert_eq!(
        phases,
        [
            (Phase::Crds, 6),
            (Phase::Namespaces, 1),
            (Phase::ClusterScoped, 5),
            (Phase::Namespaced, 10),
            (Phase::Registrations, 2)
        ]
    );
}

#[test]
fn kong_is_ordered_and_its_webhook_goes_last() {
    let (o, cluster) = ordered(supplied("kong").objects);
    assert_eq!(count(&o[..12], "CustomResourceDefinition"), 12);
    assert_eq!(
        (o[12].kind.as_str(), o[12].name.as_str()),
        ("Namespace", "kong")
    );
    assert!(cluster.contains("configuration.konghq.com", "KongClusterPlugin"));
    let last = o.last().unwrap();
    assert_eq!(last.kind, "ValidatingWebhookConfiguration");
    let class = o.iter().position(|x| x.kind == "IngressClass").unwrap();
    let first_namespaced = o.iter().position(|x| x.namespace.is_some()).unwrap();
    assert!(class < first_namespaced, "IngressClass is cluster-scoped");
    // The gateway's proxy is the NodePort Service the kind config maps host ports to.
    let proxy = o
        .iter()
        .find(|x| x.kind == "Service" && x.name == "kong-gateway-proxy")
        .unwrap();
    let ports: Vec<u64> = proxy.value["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["nodePort"].as_u64())
        .collect();
    assert_eq!(
        ports,
        [
            kind_config::KONG_HTTP_NODE_PORT as u64,
            kind_config::KONG_HTTPS_NODE_PORT as u64
        ]
    );
}

#[test]
fn the_http_addon_follows_keda_and_its_scaled_object_comes_after_its_deployments() {
    let mut cluster = ClusterKinds::default();
    manifests::order(supplied("keda").objects, &mut cluster).unwrap();
    let o = manifests::order(supplied("keda-http-add-on").objects, &mut cluster).unwrap();
    let kinds: Vec<&str> = o.iter().map(|o| o.kind.as_str()).collect();
    assert_eq!(kinds[..2], ["CustomResourceDefinition"; 2]);
    assert_eq!(kinds.last(), Some(&"ScaledObject"));
    assert!(
        !kinds.contains(&"Namespace"),
        "keda's namespace comes from KEDA"
    );
}

#[test]
fn the_kind_node_storage_path_is_the_one_local_path_provisioner_uses() {
    let lp = supplied("local-path-provisioner");
    let cm = lp
        .objects
        .iter()
        .find(|o| o.kind == "ConfigMap" && o.name == "local-path-config")
        .unwrap();
    let config: serde_json::Value =
        serde_json::from_str(cm.value["data"]["config.json"].as_str().unwrap()).unwrap();
    assert_eq!(
        config["nodePathMap"][0]["paths"][0],
        kind_config::NODE_STORAGE_PATH
    );
}

#[test]
fn a_mirror_without_an_addon_falls_back_to_the_cache_and_never_to_the_network() {
    let home = tempfile::tempdir().unwrap();
    let cache = Cache::in_home(home.path());
    let keda = Addon::named("keda").unwrap();
    let empty = tempfile::tempdir().unwrap();
    let e = supply::supply(
        keda,
        Some(&Folder(empty.path().into()) as &dyn FileSource),
        &cache,
        &Offline,
    )
    .unwrap_err();
    assert!(
        e.message
            .starts_with("add-on keda v2.20.2 is not in the mirror"),
        "{}",
        e.message
    );
    assert!(e.hint.unwrap().contains("unset APPGEAR_ADDONS_MIRROR"));

    // What the cache holds (written here from the vendor mirror, into the temporary home) is used.
    let found = mirror::lookup(&Folder(vendor()), keda).unwrap();
    cache.put(keda, &found).unwrap();
    assert!(matches!(cache.get(keda).unwrap(), Entry::Found(_)));
    let s = supply::supply(
        keda,
        Some(&Folder(empty.path().into()) as &dyn FileSource),
        &cache,
        &Offline,
    )
    .unwrap();
    assert_eq!(
        s.origin,
        Origin::Cache(home.path().join("data/cache/keda/v2.20.2"))
    );
    assert_eq!(s.objects.len(), 24);
}

#[test]
fn a_mirror_with_another_version_is_refused() {
    let m = tempfile::tempdir().unwrap();
    std::fs::create_dir(m.path().join("keda")).unwrap();
    let text = std::fs::read_to_string(vendor().join("keda/keda.yaml")).unwrap();
    std::fs::write(
        m.path().join("keda/keda.yaml"),
        text.replace(
            "ghcr.io/kedacore/keda:2.20.2",
            "ghcr.io/kedacore/keda:2.19.0",
        ),
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let e = supply::supply(
        Addon::named("keda").unwrap(),
        Some(&Folder(m.path().into()) as &dyn FileSource),
        &Cache::in_home(home.path()),
        &Offline,
    )
    .unwrap_err();
    assert!(
        e.message
            .contains("the manifests run ghcr.io/kedacore/keda:2.19.0, but keda v2.20.2 runs"),
        "{}",
        e.message
    );
}

#[test]
fn the_project_holds_no_copy_of_the_vendor_files() {
    let mut digests = std::collections::BTreeSet::new();
    for dir in std::fs::read_dir(vendor()).unwrap() {
        let dir = dir.unwrap().path();
        if dir.is_dir() {
            for f in std::fs::read_dir(&dir).unwrap() {
                let bytes = std::fs::read(f.unwrap().path()).unwrap();
                digests.insert(appgear::core::digest::sha256_hex(&bytes));
            }
        }
    }
    fn walk(dir: &Path, digests: &std::collections::BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if ["target", ".git", ".tools", "node_modules"].contains(&name.as_str()) {
                continue;
            }
            let Ok(md) = p.symlink_metadata() else {
                continue;
            };
            if md.is_dir() {
                walk(&p, digests);
            } else if md.is_file() && md.len() < 4 << 20 {
                let bytes = std::fs::read(&p).unwrap_or_default();
                assert!(
                    !digests.contains(&appgear::core::digest::sha256_hex(&bytes)),
                    "{} is a copy of a vendor file: use ../shared/vendor in place",
                    p.display()
                );
            }
        }
    }
    walk(Path::new(env!("CARGO_MANIFEST_DIR")), &digests);
}

/// The vendor folder served over http by the loopback server of `topology_b_fetch`.
fn http_vendor() -> crate::topology_b_fetch::Server {
    crate::topology_b_fetch::Server::start(Some(vendor()))
}

fn render_with(mirror: &str, out: &Path) -> (i32, String, String) {
    let home = out.with_extension("home");
    // The vendor mirror has no Vault: render what `up --without-vault` applies.
    let args = [
        "cluster",
        "render",
        "--out",
        out.to_str().unwrap(),
        "--without-vault",
    ];
    crate::topology_b_fetch::appgear(&home, mirror, &[], &args)
}

#[test]
fn an_http_mirror_renders_the_same_objects_as_the_folder_mirror() {
    let server = http_vendor();
    let tmp = tempfile::tempdir().unwrap();
    let (folder, http) = (tmp.path().join("folder"), tmp.path().join("http"));
    let (code, _, err) = render_with(&vendor().display().to_string(), &folder);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = render_with(&format!("{}/", server.url()), &http);
    assert_eq!(code, 0, "{err}");
    let mut compared = 0;
    for e in std::fs::read_dir(&folder).unwrap() {
        let name = e.unwrap().file_name();
        if !name.to_string_lossy().ends_with(".yaml") {
            continue;
        }
        assert_eq!(
            std::fs::read_to_string(folder.join(&name)).unwrap(),
            std::fs::read_to_string(http.join(&name)).unwrap(),
            "{name:?}"
        );
        compared += 1;
    }
    assert_eq!(compared, 7, "six stage files and the kustomization");
    let hits = server.hits();
    for f in [
        "/local-path-provisioner/local-path-storage.yaml",
        "/kong/kong-ingress.yaml",
        "/prometheus/prometheus.yaml",
        "/keda/keda.yaml",
        "/keda-http-add-on/keda-add-ons-http-0.15.0.yaml",
    ] {
        assert!(hits.iter().any(|h| h == f), "{f} not asked: {hits:?}");
    }
}

#[test]
fn an_http_mirror_is_checked_like_a_folder() {
    use crate::topology_b_fetch::Reply;
    let server = http_vendor();
    let tmp = tempfile::tempdir().unwrap();
    let mirror = server.url();

    // A file changed on the server: refused by its pinned SHA-256.
    server.route(
        "/local-path-provisioner/local-path-storage.yaml",
        Reply::Bytes(
            b"apiVersion: v1\nkind: Namespace\nmetadata: {name: local-path-storage}\n".to_vec(),
        ),
    );
    let (code, _, err) = render_with(&mirror, &tmp.path().join("changed"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "error: mirror {mirror}: local-path-provisioner/local-path-storage.yaml has SHA-256 "
        )) && err.contains(
            "but local-path-provisioner v0.0.37 pins 9781b39c24f3f651bd6d6e41b561e04e4904bbdb6d4f8c7a6009df3a702dcd65"
        ),
        "{err}"
    );
    server.route(
        "/local-path-provisioner/local-path-storage.yaml",
        Reply::File(vendor().join("local-path-provisioner/local-path-storage.yaml")),
    );

    // An add-on the mirror lacks: an error naming it and the mirror, never a download.
    server.route("/keda/keda.yaml", Reply::NotFound);
    let (code, _, err) = render_with(&mirror, &tmp.path().join("missing"));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(&format!(
            "error: add-on keda v2.20.2 is not in the mirror {mirror} or the cache"
        )),
        "{err}"
    );
    assert!(err.contains("a mirror replaces the network"), "{err}");
    server.route(
        "/keda/keda.yaml",
        Reply::File(vendor().join("keda/keda.yaml")),
    );

    // A body that never ends is cut off at the cap.
    server.route("/kong/kong-ingress.yaml", Reply::Endless);
    let (code, _, err) = render_with(&mirror, &tmp.path().join("endless"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "error: cannot download {mirror}/kong/kong-ingress.yaml: it is larger than 32 MiB, more than any pinned add-on file; the download was cut off"
        )),
        "{err}"
    );
    assert!(!tmp.path().join("endless/03-kong.yaml").exists());
}

/// The add-ons pinned that the vendor folder does not hold (the optional parts' charts and
/// releases), which a mirror written from it lacks.
fn not_in_vendor() -> Vec<String> {
    Addon::all()
        .filter(|a| !vendor().join(a.name()).is_dir())
        .map(|a| a.describe())
        .collect()
}

#[test]
fn cluster_mirror_writes_a_folder_from_an_http_mirror() {
    let server = http_vendor();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mirror");
    let args = ["cluster", "mirror", "--out", out.to_str().unwrap()];
    let (code, _, err) =
        crate::topology_b_fetch::appgear(&tmp.path().join("home"), &server.url(), &[], &args);
    let lacking = not_in_vendor();
    if lacking.is_empty() {
        assert_eq!(code, 0, "{err}");
    } else {
        // Every add-on the mirror holds is written; those it lacks are named, not downloaded.
        assert_eq!(code, 3, "{err}");
        assert!(
            err.contains(&format!("could not get {}", lacking.join(", "))),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "wrote keda v2.20.2 (from mirror {})",
                server.url()
            )),
            "{err}"
        );
    }
    for f in [
        "local-path-provisioner/local-path-storage.yaml",
        "kong/kong-ingress.yaml",
        "prometheus/prometheus.yaml",
        "keda/keda.yaml",
        "keda-http-add-on/keda-add-ons-http-0.15.0.yaml",
        "airbyte/airbyte-2.2.0.tgz",
    ] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(vendor().join(f)).unwrap(),
            "{f}"
        );
    }
    // What it wrote is a mirror folder: the render from it is the render from the http mirror.
    let (code, _, err) = render_with(&out.display().to_string(), &tmp.path().join("a"));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = render_with(&server.url(), &tmp.path().join("b"));
    assert_eq!(code, 0, "{err}");
    for f in ["02-storage.yaml", "03-kong.yaml", "05-keda.yaml"] {
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("a").join(f)).unwrap(),
            std::fs::read_to_string(tmp.path().join("b").join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn appgears_chart_values_are_the_ones_the_vendor_renders_were_made_with() {
    // vendor/README.md: Kong rendered with values-kind.yaml, Prometheus with values.yaml. The
    // values appgear renders the downloaded packages with must be the same values (comments
    // and order aside), so the network path gives the objects the mirror gives.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/addons");
    for (ours, theirs) in [
        ("kong/values.yaml", "kong/values-kind.yaml"),
        ("prometheus/values.yaml", "prometheus/values.yaml"),
    ] {
        let read = |p: PathBuf| -> serde_json::Value {
            serde_norway::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
        };
        assert_eq!(read(root.join(ours)), read(vendor().join(theirs)), "{ours}");
    }
}

#[test]
fn airbyte_comes_from_an_http_mirror_as_a_package_and_is_rendered() {
    let server = http_vendor();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let args = [
        "cluster",
        "render",
        "--out",
        out.to_str().unwrap(),
        "--with-airbyte",
        "--without-vault",
    ];
    let helm = crate::topology_b_fetch::helm_dir();
    let (code, _, err) =
        crate::topology_b_fetch::appgear(&tmp.path().join("home"), &server.url(), &[helm], &args);
    assert_eq!(code, 0, "{err}");
    assert!(server
        .hits()
        .iter()
        .any(|h| h == "/airbyte/airbyte-2.2.0.tgz"));
    let text = std::fs::read_to_string(out.join("09-airbyte.yaml")).unwrap();
    assert!(
        text.contains("\"name\": \"airbyte-server\""),
        "{}",
        &text[..200]
    );
}
