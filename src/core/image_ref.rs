//! `APPGEAR_REGISTRY_MIRROR` for a pull: the reference to ask the mirror for.
//!
//! One registry mirror serves both topologies. kind's containerd reaches it through the `_default`
//! hosts.toml (see `topology_b::kind_config`), which asks the mirror for the image's path in its
//! own registry (`library/redis`, `kedacore/keda`), so Docker (Topology A, and anything else
//! appgear pulls) asks for the same path on the mirror host: a mirror filled once answers both.
//!
//! ```text
//! redis:8                                   → <mirror>/library/redis:8
//! docker.io/library/redis:8@sha256:…        → <mirror>/library/redis:8@sha256:…
//! codercom/code-server:4.106.3              → <mirror>/codercom/code-server:4.106.3
//! ghcr.io/kedacore/keda:2.20.2              → <mirror>/kedacore/keda:2.20.2
//! quay.io/prometheus/prometheus:v3.14.0     → <mirror>/prometheus/prometheus:v3.14.0
//! registry.k8s.io/pause:3.10                → <mirror>/pause:3.10
//! ```
//!
//! `normalize` gives a reference in the fully qualified form both write (`docker.io/library/…`),
//! to compare an archive's short names with the pins.
//!
//! Pure and dependency-free (std only), in `core` so Topology A's pull path and Topology B share
//! the one rule (see docs/images.md).

/// The reference to pull `image` through the registry mirror `mirror` (`host[:port]`, optionally
/// followed by a path prefix; an `http://` or `https://` in front and a trailing `/` are ignored).
/// The registry part of `image` is replaced by the mirror, Docker Hub's official images keep their
/// `library/` path, and the tag and digest are kept, so a digest-pinned image stays verified by
/// its digest. An image already on the mirror, or an empty mirror, gives `image` unchanged.
pub fn through_mirror(image: &str, mirror: &str) -> String {
    let mirror = mirror.trim();
    let mirror = mirror
        .strip_prefix("https://")
        .or_else(|| mirror.strip_prefix("http://"))
        .unwrap_or(mirror)
        .trim_end_matches('/');
    if mirror.is_empty() || image.starts_with(&format!("{mirror}/")) {
        return image.to_string();
    }
    let (name, tag, digest) = split(image);
    let path = repository_path(name);
    let mut out = format!("{mirror}/{path}");
    if let Some(t) = tag {
        out.push(':');
        out.push_str(t);
    }
    if let Some(d) = digest {
        out.push('@');
        out.push_str(d);
    }
    out
}

/// `image` fully qualified as Docker and containerd normalise it: `redis:8.8.1` →
/// `docker.io/library/redis:8.8.1`, `kong/kong:3.9` → `docker.io/kong/kong:3.9`; other registries
/// are kept. Archives written by Docker name images in the short form (`redis:8.8.1`) and the pins
/// in either: compare the normalised forms.
pub fn normalize(image: &str) -> String {
    let (name, tag, digest) = split(image);
    let full = match name.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            if matches!(
                first,
                "docker.io" | "index.docker.io" | "registry-1.docker.io"
            ) {
                format!("docker.io/{}", repository_path(name))
            } else {
                name.to_string()
            }
        }
        _ => format!("docker.io/{}", repository_path(name)),
    };
    let mut out = full;
    if let Some(t) = tag {
        out.push(':');
        out.push_str(t);
    }
    if let Some(d) = digest {
        out.push('@');
        out.push_str(d);
    }
    out
}

/// Name, tag and digest of a reference. A tag is a `:` after the last `/` (a `:` before it is a
/// registry's port).
fn split(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let (named, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last_slash = named.rfind('/').map_or(0, |i| i + 1);
    match named[last_slash..].rfind(':') {
        Some(i) => (
            &named[..last_slash + i],
            Some(&named[last_slash + i + 1..]),
            digest,
        ),
        None => (named, None, digest),
    }
}

/// The image's path inside its registry, as Docker normalises names: the first component is a
/// registry when it has a `.` or a `:` or is `localhost`; otherwise the registry is Docker Hub,
/// where a one-component name is an official image under `library/`.
fn repository_path(name: &str) -> String {
    let (registry, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest)
        }
        _ => ("docker.io", name),
    };
    let docker_hub = matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    );
    if docker_hub && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::{normalize, through_mirror};

    #[test]
    fn short_and_long_names_normalise_alike() {
        assert_eq!(normalize("redis:8.8.1"), "docker.io/library/redis:8.8.1");
        assert_eq!(
            normalize("docker.io/library/redis:8.8.1"),
            "docker.io/library/redis:8.8.1"
        );
        assert_eq!(
            normalize("index.docker.io/library/redis:8.8.1"),
            "docker.io/library/redis:8.8.1"
        );
        assert_eq!(normalize("docker.io/redis:8"), "docker.io/library/redis:8");
        assert_eq!(normalize("kong:3.9"), "docker.io/library/kong:3.9");
        assert_eq!(
            normalize("kindest/node:v1.35.8"),
            "docker.io/kindest/node:v1.35.8"
        );
        assert_eq!(
            normalize("ghcr.io/kedacore/keda:2.20.2"),
            "ghcr.io/kedacore/keda:2.20.2"
        );
        assert_eq!(
            normalize("localhost:5000/tool@sha256:00"),
            "localhost:5000/tool@sha256:00"
        );
        assert_eq!(normalize("busybox"), "docker.io/library/busybox");
    }

    const D: &str = "sha256:c88d347edef6249a6d2293f926f1eeb48bd40c57cbcd02c07f52e7f1fd2cb46b";

    #[test]
    fn docker_hub_names_short_and_long_keep_library() {
        let m = "mirror.local";
        assert_eq!(through_mirror("redis:8", m), "mirror.local/library/redis:8");
        assert_eq!(
            through_mirror("redis", m),
            "mirror.local/library/redis",
            "no tag stays no tag"
        );
        assert_eq!(
            through_mirror(&format!("docker.io/library/redis:8@{D}"), m),
            format!("mirror.local/library/redis:8@{D}")
        );
        assert_eq!(
            through_mirror("docker.io/redis:8.8.1", m),
            "mirror.local/library/redis:8.8.1"
        );
        assert_eq!(
            through_mirror("index.docker.io/library/busybox:1.37.0", m),
            "mirror.local/library/busybox:1.37.0"
        );
        assert_eq!(
            through_mirror("codercom/code-server:4.106.3", m),
            "mirror.local/codercom/code-server:4.106.3"
        );
        assert_eq!(
            through_mirror("docker.io/rancher/local-path-provisioner:v0.0.37", m),
            "mirror.local/rancher/local-path-provisioner:v0.0.37"
        );
        assert_eq!(
            through_mirror("kindest/node:v1.35.8@sha256:07b2536e", m),
            "mirror.local/kindest/node:v1.35.8@sha256:07b2536e"
        );
    }

    #[test]
    fn other_registries_keep_their_path() {
        let m = "mirror.local";
        assert_eq!(
            through_mirror("ghcr.io/kedacore/keda:2.20.2", m),
            "mirror.local/kedacore/keda:2.20.2"
        );
        assert_eq!(
            through_mirror("quay.io/prometheus/prometheus:v3.14.0", m),
            "mirror.local/prometheus/prometheus:v3.14.0"
        );
        assert_eq!(
            through_mirror("registry.k8s.io/pause:3.10", m),
            "mirror.local/pause:3.10",
            "a one-component path outside Docker Hub gets no library/"
        );
        assert_eq!(
            through_mirror("registry.k8s.io/ingress-nginx/controller:v1.12.0", m),
            "mirror.local/ingress-nginx/controller:v1.12.0"
        );
        assert_eq!(
            through_mirror("localhost:5000/team/tool:1", m),
            "mirror.local/team/tool:1"
        );
        assert_eq!(through_mirror("localhost/tool:1", m), "mirror.local/tool:1");
    }

    #[test]
    fn digests_are_kept_with_or_without_a_tag() {
        let m = "mirror.local";
        assert_eq!(
            through_mirror(&format!("redis@{D}"), m),
            format!("mirror.local/library/redis@{D}")
        );
        assert_eq!(
            through_mirror(&format!("ghcr.io/kedacore/keda:2.20.2@{D}"), m),
            format!("mirror.local/kedacore/keda:2.20.2@{D}")
        );
        assert_eq!(
            through_mirror(&format!("localhost:5000/tool@{D}"), m),
            format!("mirror.local/tool@{D}"),
            "the port of the image's registry is not a tag"
        );
    }

    #[test]
    fn a_mirror_with_a_port_a_scheme_or_a_path_prefix() {
        let img = format!("docker.io/library/redis:8@{D}");
        assert_eq!(
            through_mirror(&img, "localhost:5000"),
            format!("localhost:5000/library/redis:8@{D}")
        );
        assert_eq!(
            through_mirror(&img, "http://10.0.0.5:5000/"),
            format!("10.0.0.5:5000/library/redis:8@{D}")
        );
        assert_eq!(
            through_mirror(&img, "https://registry.local:5443"),
            format!("registry.local:5443/library/redis:8@{D}")
        );
        assert_eq!(
            through_mirror("traefik:v3.6.2", "harbor.local/proxy"),
            "harbor.local/proxy/library/traefik:v3.6.2"
        );
    }

    #[test]
    fn no_mirror_or_already_mirrored_is_unchanged() {
        assert_eq!(through_mirror("redis:8", ""), "redis:8");
        assert_eq!(through_mirror("redis:8", "  "), "redis:8");
        let once = through_mirror("ghcr.io/kedacore/keda:2.20.2", "localhost:5000");
        assert_eq!(through_mirror(&once, "localhost:5000"), once);
        assert_eq!(through_mirror(&once, "http://localhost:5000/"), once);
    }
}
