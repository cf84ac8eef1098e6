//! The Factory templates, embedded in the binary so it renders from anywhere. The files under
//! `assets/factory/apps/factory` mirror the spec's `apps/factory` tree one for one; placeholders are
//! the spec's `<workspace_id>` / `<tenant_id>` plus appgear's own (see `render::PLACEHOLDERS`).

/// A template and where its output goes, relative to the place given by its scope.
#[derive(Debug, Clone, Copy)]
pub struct Template {
    /// The template file under `assets/factory` (for messages).
    pub source: &'static str,
    /// Output path, relative to the tree root (suite), the workspace folder (workspace), or the cluster folder (cluster).
    pub target: &'static str,
    pub text: &'static str,
}

macro_rules! template {
    ($source:literal, $target:literal) => {
        Template {
            source: $source,
            target: $target,
            text: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/assets/factory/",
                $source
            )),
        }
    };
}

/// Rendered once, at the root of the tree: the top kustomization and the shared Airbyte.
pub const SUITE: &[Template] = &[
    template!(
        "apps/factory/airbyte/application-airbyte.yaml",
        "apps/factory/airbyte/application-airbyte.yaml"
    ),
    template!(
        "apps/factory/airbyte/ingress-airbyte-kong.yaml",
        "apps/factory/airbyte/ingress-airbyte-kong.yaml"
    ),
    template!(
        "apps/factory/airbyte/kustomization.yaml",
        "apps/factory/airbyte/kustomization.yaml"
    ),
    template!(
        "apps/factory/airbyte/namespace.yaml",
        "apps/factory/airbyte/namespace.yaml"
    ),
    template!(
        "apps/factory/airbyte/scaledobject-airbyte-workers.yaml",
        "apps/factory/airbyte/scaledobject-airbyte-workers.yaml"
    ),
    template!(
        "apps/factory/airbyte/serviceaccount-airbyte-admin.yaml",
        "apps/factory/airbyte/serviceaccount-airbyte-admin.yaml"
    ),
    template!(
        "apps/factory/kustomization.yaml",
        "apps/factory/kustomization.yaml"
    ),
];

/// Rendered once per workspace, under `apps/factory/workspaces/<workspace_id>/`.
pub const WORKSPACE: &[Template] = &[
    template!(
        "apps/factory/multiplayer/deployment-multiplayer.yaml",
        "multiplayer/deployment-multiplayer.yaml"
    ),
    template!(
        "apps/factory/multiplayer/httpscaledobject-multiplayer.yaml",
        "multiplayer/httpscaledobject-multiplayer.yaml"
    ),
    template!(
        "apps/factory/multiplayer/ingress-multiplayer-kong.yaml",
        "multiplayer/ingress-multiplayer-kong.yaml"
    ),
    template!(
        "apps/factory/multiplayer/kustomization.yaml",
        "multiplayer/kustomization.yaml"
    ),
    template!(
        "apps/factory/multiplayer/scaledobject-multiplayer.yaml",
        "multiplayer/scaledobject-multiplayer.yaml"
    ),
    template!(
        "apps/factory/multiplayer/service-multiplayer-wake.yaml",
        "multiplayer/service-multiplayer-wake.yaml"
    ),
    template!(
        "apps/factory/multiplayer/service-multiplayer.yaml",
        "multiplayer/service-multiplayer.yaml"
    ),
    template!(
        "apps/factory/multiplayer/serviceaccount-multiplayer.yaml",
        "multiplayer/serviceaccount-multiplayer.yaml"
    ),
    template!(
        "apps/factory/tauri/deployment-builder.yaml",
        "tauri/deployment-builder.yaml"
    ),
    template!(
        "apps/factory/tauri/ingress-builder-kong.yaml",
        "tauri/ingress-builder-kong.yaml"
    ),
    template!(
        "apps/factory/tauri/kustomization.yaml",
        "tauri/kustomization.yaml"
    ),
    template!(
        "apps/factory/tauri/scaledjob-builder-android-apk.yaml",
        "tauri/scaledjob-builder-android-apk.yaml"
    ),
    template!(
        "apps/factory/tauri/scaledjob-builder-tauri-linux.yaml",
        "tauri/scaledjob-builder-tauri-linux.yaml"
    ),
    template!(
        "apps/factory/tauri/scaledjob-builder-web.yaml",
        "tauri/scaledjob-builder-web.yaml"
    ),
    template!(
        "apps/factory/tauri/service-builder.yaml",
        "tauri/service-builder.yaml"
    ),
    template!(
        "apps/factory/tauri/serviceaccount-builder.yaml",
        "tauri/serviceaccount-builder.yaml"
    ),
    template!(
        "apps/factory/vscode/deployment-vscode.yaml",
        "vscode/deployment-vscode.yaml"
    ),
    template!(
        "apps/factory/vscode/httpscaledobject-vscode.yaml",
        "vscode/httpscaledobject-vscode.yaml"
    ),
    template!(
        "apps/factory/vscode/ingress-vscode-kong.yaml",
        "vscode/ingress-vscode-kong.yaml"
    ),
    template!(
        "apps/factory/vscode/kongplugin-vscode-slash.yaml",
        "vscode/kongplugin-vscode-slash.yaml"
    ),
    template!(
        "apps/factory/vscode/kustomization.yaml",
        "vscode/kustomization.yaml"
    ),
    template!(
        "apps/factory/vscode/pvc-workspace.yaml",
        "vscode/pvc-workspace.yaml"
    ),
    template!(
        "apps/factory/vscode/scaledobject-vscode.yaml",
        "vscode/scaledobject-vscode.yaml"
    ),
    template!(
        "apps/factory/vscode/service-vscode-wake.yaml",
        "vscode/service-vscode-wake.yaml"
    ),
    template!(
        "apps/factory/vscode/service-vscode.yaml",
        "vscode/service-vscode.yaml"
    ),
    template!(
        "apps/factory/vscode/serviceaccount-vscode.yaml",
        "vscode/serviceaccount-vscode.yaml"
    ),
    template!("workspace/kustomization.yaml", "kustomization.yaml"),
    template!("workspace/namespace.yaml", "namespace.yaml"),
];

/// Rendered once, under `clusters/<cluster>/`.
pub const CLUSTER: &[Template] = &[template!("clusters/apps-suites.yaml", "apps-suites.yaml")];
