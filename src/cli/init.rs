//! `appgear init`: create or complete the home folder.

use crate::core::error::Result;
use crate::core::owned_files::Action;
use crate::core::ui;
use crate::topology_a::home::Home;
use crate::topology_a::provision::{self, InitReport};

pub fn run(home: &Home) -> Result<i32> {
    home.ensure_root()?;
    let _lock = home.lock("init")?;
    // Topology B's keys go into the same `.env`, from their one definition.
    let provisioned = provision::init_with(home, crate::topology_b::settings::KEYS)?;
    print_report(home, &provisioned.report);
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
    for step in &report.files {
        match step.action {
            Action::Create => ui::step(&format!("wrote {}", step.path)),
            Action::Update => ui::step(&format!("updated {}", step.path)),
            _ => {
                if let Some(m) = step.message() {
                    ui::warn(&m);
                }
            }
        }
    }
}
