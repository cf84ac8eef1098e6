//! Suite → files: substitute validated values into the templates. Pure: no disk access, so the
//! same suite always gives the same bytes.

use super::model::{Suite, Workspace};
use super::templates::{Template, CLUSTER, SUITE, WORKSPACE};
use crate::core::error::{Error, Result};

/// The first line of every rendered file: the marker of `core::owned_files`, with the version
/// that wrote it.
pub fn marker() -> String {
    format!(
        "{} {} — an edited file is kept, not rewritten; remove this line to make it yours for good, delete the file to get appgear's version back.",
        crate::core::owned_files::MARKER,
        env!("CARGO_PKG_VERSION")
    )
}

/// Every placeholder a template may use. Anything else of the form `<name>` left after
/// substitution is a bug in a template and stops the render.
pub const PLACEHOLDERS: &[&str] = &[
    "<workspace_id>",
    "<tenant_id>",
    "<domain>",
    "<appgear_version>",
    "<repo_url>",
    "<revision>",
    "<workspace_resources>",
];

/// One file of the rendered tree, with its path relative to the tree root ('/'-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: String,
    pub text: String,
}

/// Render the whole `appgear-gitops-suites` tree for a suite, sorted by path.
pub fn render(suite: &Suite) -> Result<Vec<RenderedFile>> {
    let workspace_resources: String = suite
        .workspaces
        .iter()
        .map(|w| format!("  - workspaces/{}/\n", w.id.as_str()))
        .collect::<String>()
        .trim_end_matches('\n')
        .to_string();
    let common = |extra: &[(&'static str, String)]| {
        let mut v: Vec<(&'static str, String)> = vec![
            ("<domain>", suite.domain.as_str().to_string()),
            ("<appgear_version>", env!("CARGO_PKG_VERSION").to_string()),
            ("<repo_url>", suite.repo.as_str().to_string()),
            ("<revision>", suite.revision.as_str().to_string()),
            ("<workspace_resources>", workspace_resources.clone()),
        ];
        v.extend(extra.iter().cloned());
        v
    };

    let mut files = Vec::new();
    for t in SUITE {
        files.push(render_one(t, t.target.to_string(), &common(&[]))?);
    }
    for t in CLUSTER {
        let path = format!("clusters/{}/{}", suite.cluster.as_str(), t.target);
        files.push(render_one(t, path, &common(&[]))?);
    }
    for w in &suite.workspaces {
        let values = common(&workspace_values(w));
        for t in WORKSPACE {
            let path = format!("apps/factory/workspaces/{}/{}", w.id.as_str(), t.target);
            files.push(render_one(t, path, &values)?);
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn workspace_values(w: &Workspace) -> [(&'static str, String); 2] {
    [
        ("<workspace_id>", w.id.as_str().to_string()),
        ("<tenant_id>", w.tenant.as_str().to_string()),
    ]
}

fn render_one(t: &Template, path: String, values: &[(&str, String)]) -> Result<RenderedFile> {
    let mut text = t.text.to_string();
    for (placeholder, value) in values {
        text = text.replace(placeholder, value);
    }
    if let Some(left) = find_placeholder(&text) {
        return Err(Error::internal(format!(
            "template {} leaves placeholder {left} unfilled in {path}",
            t.source
        ))
        .hint("this is a bug in appgear's templates; please report it"));
    }
    Ok(RenderedFile {
        path,
        text: format!("{}\n{text}", marker()),
    })
}

/// The first `<name>` (lower-case letters and '_') in `text`, if any.
pub fn find_placeholder(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(off) = text[i..].find('<') {
        let start = i + off;
        let mut j = start + 1;
        while j < bytes.len() && (bytes[j].is_ascii_lowercase() || bytes[j] == b'_') {
            j += 1;
        }
        if j > start + 1 && j < bytes.len() && bytes[j] == b'>' {
            return Some(text[start..=j].to_string());
        }
        i = start + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::model::WorkspaceEntry;

    fn suite(ws: &[(&str, &str)]) -> Suite {
        let entries: Vec<WorkspaceEntry> = ws
            .iter()
            .map(|(i, t)| WorkspaceEntry {
                id: i.to_string(),
                tenant: t.to_string(),
            })
            .collect();
        Suite::new(
            "ag-br-core-dev",
            "https://git.example.com/appgear-gitops-suites.git",
            "main",
            "factory.dev.appgear.local",
            &entries,
        )
        .unwrap()
    }

    #[test]
    fn every_template_uses_only_known_placeholders() {
        for t in SUITE.iter().chain(WORKSPACE).chain(CLUSTER) {
            let mut text = t.text.to_string();
            for p in PLACEHOLDERS {
                text = text.replace(p, "x");
            }
            assert_eq!(find_placeholder(&text), None, "{}", t.source);
        }
    }

    #[test]
    fn unknown_placeholder_is_an_error() {
        let t = Template {
            source: "test.yaml",
            target: "test.yaml",
            text: "name: <workspace_id>\nother: <who_knows>\n",
        };
        let e = render_one(&t, "x".into(), &[("<workspace_id>", "demo".into())]).unwrap_err();
        assert!(e.message.contains("<who_knows>"), "{}", e.message);
    }

    #[test]
    fn order_of_workspaces_does_not_change_output() {
        let a = render(&suite(&[("b", "t1"), ("a", "t2")])).unwrap();
        let b = render(&suite(&[("a", "t2"), ("b", "t1")])).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn builder_scaledjobs_read_the_streams_the_builder_writes() {
        use crate::builder::queue::names::{Names, DEFAULT_PREFIX, GROUP};
        use crate::core::names::WorkspaceId;
        let files = render(&suite(&[("demo", "acme")])).unwrap();
        let names = Names::new(DEFAULT_PREFIX, &WorkspaceId::parse("demo").unwrap());
        for target in ["tauri-linux", "web", "android-apk"] {
            let path =
                format!("apps/factory/workspaces/demo/tauri/scaledjob-builder-{target}.yaml");
            let f = files.iter().find(|f| f.path == path).expect(&path);
            assert!(
                f.text
                    .contains(&format!("stream: {}\n", names.stream(target))),
                "{path}"
            );
            assert!(
                f.text.contains(&format!("consumerGroup: {GROUP}\n")),
                "{path}"
            );
            assert!(
                f.text.contains(&format!("value: \"{DEFAULT_PREFIX}\"\n")),
                "{path}: BUILD_QUEUE is the prefix"
            );
            assert!(
                f.text
                    .contains(&format!("--target\n              - {target}\n")),
                "{path}"
            );
        }
    }

    #[test]
    fn every_file_starts_with_the_marker() {
        for f in render(&suite(&[("demo", "acme")])).unwrap() {
            assert!(crate::core::owned_files::has_marker(&f.text), "{}", f.path);
        }
    }
}
