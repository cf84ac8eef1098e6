//! `appgear up`: bring Topology A up and converge it to the compose file.

use crate::core::error::Result;
use crate::core::ui;
use crate::topology_a::home::Home;
use crate::topology_a::settings::Settings;
use crate::topology_a::{doctor, tls, up};
use clap::Args;

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Print what would change, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(home: &Home, args: UpArgs) -> Result<i32> {
    if args.dry_run {
        match up::dry_run(home).await? {
            None => ui::out(format!(
                "initialise {} (appgear init), then create every service",
                home.root().display()
            )),
            Some(lines) => lines.iter().for_each(ui::out),
        }
        return Ok(0);
    }
    let prepared = up::prepare(home, crate::topology_b::settings::KEYS)?;
    super::init::print_report(home, &prepared.report);
    let tracker = ui::Tracker::new();
    let result = up::converge(&prepared, &tracker).await;
    tracker.clear();
    for note in result? {
        ui::warn(&note);
    }
    print_access(home, &prepared.settings);
    Ok(0)
}

/// Where to go, how to log in, and what to add to the hosts file when the domain does not resolve.
fn print_access(home: &Home, settings: &Settings) {
    let port = settings.vscode_port;
    let domain = settings.domain.as_str();
    ui::out(format!("{} the CDE is up", ui::green("✓")));
    ui::out(format!("  open      https://localhost:{port}/vscode/"));
    ui::out(format!("            https://{domain}:{port}/vscode/"));
    ui::out(format!(
        "  password  CODE_SERVER_PASSWORD in {} (`appgear config get CODE_SERVER_PASSWORD`)",
        home.env_path().display()
    ));
    ui::out(format!("  your code {}", home.cde_dir().display()));
    ui::out(format!(
        "  trust     {} once, to avoid certificate warnings (see README)",
        home.tls_dir().join(tls::CA_CERT).display()
    ));
    if !doctor::resolves_quickly(domain) {
        ui::out(format!(
            "  {} {domain} does not resolve; add this line to /etc/hosts:",
            ui::yellow("hosts")
        ));
        ui::out(format!("            {} {domain}", settings.local_address()));
    }
}
