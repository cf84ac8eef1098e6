//! `appgear up`: bring Topology A up and converge it to the compose file.

use crate::core::error::{Error, Result};
use crate::core::ui;
use crate::topology_a::home::Home;
use crate::topology_a::settings::Settings;
use crate::topology_a::stack::{apply, docker, load, plan};
use clap::Args;

#[derive(Args, Debug)]
pub struct UpArgs {
    /// Print what would change, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(home: &Home, args: UpArgs) -> Result<i32> {
    if args.dry_run {
        return dry_run(home).await;
    }
    home.ensure_root()?;
    let _lock = home.lock("up")?;
    let report = home.init()?;
    super::init::print_report(home, &report);
    let (settings, project) = load::load(home)?;
    let docker = docker::connect().await?;
    let observed = docker::observe(&docker, &project.name).await?;
    let plan = plan::plan(&project, &observed);
    let tracker = ui::Tracker::new();
    let result = tokio::select! {
        r = apply::apply(&docker, &project, &plan, settings.values(), &tracker) => r,
        _ = tokio::signal::ctrl_c() => Err(Error::interrupted()),
    };
    tracker.clear();
    result?;
    print_access(home, &settings);
    Ok(0)
}

/// What `up` would change, from the home as it is: writes nothing, not even `init`'s files.
async fn dry_run(home: &Home) -> Result<i32> {
    if !home.is_initialised() {
        println!(
            "initialise {} (appgear init), then create every service",
            home.root().display()
        );
        return Ok(0);
    }
    let (_, project) = load::load(home)?;
    let docker = docker::connect().await?;
    let observed = docker::observe(&docker, &project.name).await?;
    for line in plan::plan(&project, &observed).describe() {
        println!("{line}");
    }
    Ok(0)
}

/// Where to go, how to log in, and what to add to the hosts file when the domain does not resolve.
fn print_access(home: &Home, settings: &Settings) {
    let port = settings.get("FACTORY_VSCODE_PORT");
    let domain = settings.get("FACTORY_DOMAIN");
    println!("{} the CDE is up", ui::green("✓"));
    println!("  open      https://localhost:{port}/vscode/");
    println!("            https://{domain}:{port}/vscode/");
    println!(
        "  password  CODE_SERVER_PASSWORD in {} (`appgear config get CODE_SERVER_PASSWORD`)",
        home.env_path().display()
    );
    println!("  your code {}", home.cde_dir().display());
    println!(
        "  trust     {} once, to avoid certificate warnings (see README)",
        home.tls_dir()
            .join(crate::topology_a::tls::CA_CERT)
            .display()
    );
    if !crate::topology_a::doctor::resolves_quickly(domain) {
        println!(
            "  {} {domain} does not resolve; add this line to /etc/hosts:",
            ui::yellow("hosts")
        );
        println!(
            "            {} {domain}",
            settings
                .get("FACTORY_BIND_ADDRESS")
                .replace("0.0.0.0", "127.0.0.1")
        );
    }
}
