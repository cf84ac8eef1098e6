//! `appgear init`: create or complete the home folder.

use crate::core::error::Result;
use crate::core::ui;
use crate::topology_a::home::{Home, InitReport, WriteOutcome};

pub fn run(home: &Home) -> Result<i32> {
    home.ensure_root()?;
    let _lock = home.lock("init")?;
    let report = home.init()?;
    print_report(home, &report);
    Ok(0)
}

/// Say what changed; silent about what was already right.
pub fn print_report(home: &Home, report: &InitReport) {
    if report.created_env {
        ui::step(&format!(
            "created {} (with a new code-server password)",
            home.env_path().display()
        ));
    } else if !report.added_keys.is_empty() {
        ui::step(&format!("added to .env: {}", report.added_keys.join(", ")));
    }
    if report.tls_issued {
        ui::step(&format!(
            "issued a TLS certificate from the local CA in {}",
            home.tls_dir().display()
        ));
    }
    if let Some(w) = &report.cde_owner_warning {
        ui::warn(w);
    }
    for (file, outcome) in &report.files {
        match outcome {
            WriteOutcome::Created => ui::step(&format!("wrote {file}")),
            WriteOutcome::Updated => ui::step(&format!("updated {file}")),
            WriteOutcome::KeptUsers => ui::warn(&format!(
                "{file} has no appgear marker, so it is yours: left unchanged (restore the marker line or delete the file to get appgear's version)"
            )),
            WriteOutcome::KeptEdited => ui::warn(&format!(
                "{file} was edited since appgear wrote it: your version is kept (remove its marker line to make it yours for good, or delete it to get appgear's version)"
            )),
            WriteOutcome::Unchanged => {}
        }
    }
}
