//! `appgear verify`: static checks of rendered manifests.

use crate::core::error::{Error, Result};
use crate::core::ui;
use crate::gitops::verify::{load, rules, Finding, Rule};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Rendered trees, folders or YAML files to check.
    #[arg(value_name = "PATH", default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// Print the findings as JSON.
    #[arg(long)]
    pub json: bool,
    /// Skip a rule by id (e.g. FACTORY007 when checking `kubectl kustomize` output, which is not
    /// laid out as a tree). Repeatable.
    #[arg(long, value_name = "RULE")]
    pub skip: Vec<String>,
}

/// Exit 0 with no findings, 1 with findings; bad paths and unparseable YAML are errors (exit 2).
pub async fn run(args: VerifyArgs) -> Result<i32> {
    for s in &args.skip {
        if !Rule::ALL.iter().any(|r| r.id() == s) {
            let ids: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
            return Err(Error::bad_input(format!("unknown rule {s:?} for --skip"))
                .hint(format!("rule ids are {}", ids.join(", "))));
        }
    }
    let found = load::files(&args.paths)?;
    for s in &found.skipped {
        ui::warn(&format!(
            "skipped {}: it links to {}, outside {}",
            s.link.display(),
            s.target.display(),
            s.root.display()
        ));
    }
    let files = found.files;
    let docs = load::docs(&files)?;
    let findings: Vec<Finding> = rules::check(&docs)
        .into_iter()
        .filter(|f| !args.skip.iter().any(|s| s == f.rule))
        .collect();
    if args.json {
        ui::print_json(&serde_json::json!({
            "files": files.len(),
            "documents": docs.len(),
            "findings": findings,
            "skipped_links": found.skipped,
        }))?;
    } else {
        print_human(&findings, files.len(), docs.len());
    }
    Ok(if findings.is_empty() { 0 } else { 1 })
}

fn print_human(findings: &[Finding], files: usize, docs: usize) {
    for f in findings {
        ui::out(format_args!(
            "{} {} {}#{} {}",
            ui::red(f.rule),
            ui::dim(&format!("[{}]", f.rule_name)),
            f.file,
            f.document,
            f.object
        ));
        ui::out(format_args!("  {}", f.message));
        ui::out(format_args!("  {} {}", ui::yellow("fix:"), f.hint));
    }
    let summary = format!(
        "{} finding{} in {docs} document{} ({files} file{})",
        if findings.is_empty() {
            "no".to_string()
        } else {
            findings.len().to_string()
        },
        if findings.len() == 1 { "" } else { "s" },
        if docs == 1 { "" } else { "s" },
        if files == 1 { "" } else { "s" },
    );
    if findings.is_empty() {
        ui::out(format_args!("{}", ui::green(&summary)));
    } else {
        ui::out(format_args!("{}", ui::bold(&summary)));
    }
}
