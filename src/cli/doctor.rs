//! `appgear doctor`: is this machine ready for appgear, and if not, what to do. Both
//! topologies: Topology A's checks (`appgear up`) and Topology B's (`appgear cluster up`, the
//! same rules as its preflight), composed here since Topology A cannot name Topology B.

use crate::core::error::Result;
use crate::core::ui;
use crate::topology_a::doctor::{run_checks, Finding, Level};
use crate::topology_a::home::Home;
use clap::Args;

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn failed(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.status == Level::Fail)
}

/// Exit 1 when any check of either topology fails; warnings do not fail.
pub async fn run(home: &Home, args: DoctorArgs) -> Result<i32> {
    let a = run_checks(home).await;
    let b = crate::topology_b::doctor::checks(home).await;
    let (a_failed, b_failed) = (failed(&a), failed(&b));
    if args.json {
        // `findings` stays Topology A's, as before; `topology_b` holds the cluster's.
        ui::print_json(&serde_json::json!({
            "ok": !a_failed && !b_failed,
            "findings": a,
            "topology_b": {"ok": !b_failed, "findings": b},
        }))?;
    } else {
        for (i, (title, findings)) in [
            ("Topology A (appgear up)", &a),
            ("Topology B (appgear cluster up, core profile)", &b),
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                ui::out("");
            }
            ui::out(title);
            print_table(findings);
        }
    }
    Ok(if a_failed || b_failed { 1 } else { 0 })
}

fn print_table(findings: &[Finding]) {
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|f| {
            let status = match f.status {
                Level::Ok => ui::green("ok"),
                Level::Warn => ui::yellow("warn"),
                Level::Fail => ui::red("FAIL"),
            };
            vec![f.check.clone(), status, f.detail.clone()]
        })
        .collect();
    ui::out(ui::table(&["CHECK", "STATUS", "DETAIL"], &rows).trim_end_matches('\n'));
    for f in findings.iter().filter(|f| f.status != Level::Ok) {
        if let Some(h) = &f.hint {
            ui::out(format!("{} {}: {h}", ui::yellow("fix"), f.check));
        }
    }
}
