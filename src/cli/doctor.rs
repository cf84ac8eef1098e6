//! `appgear doctor`: is this machine ready for appgear, and if not, what to do.

use crate::core::error::Result;
use crate::core::ui;
use crate::topology_a::doctor::{run_checks, Level};
use crate::topology_a::home::Home;
use clap::Args;

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Exit 1 when any check fails; warnings do not fail.
pub async fn run(home: &Home, args: DoctorArgs) -> Result<i32> {
    let findings = run_checks(home).await;
    let failed = findings.iter().any(|f| f.status == Level::Fail);
    if args.json {
        ui::print_json(&serde_json::json!({ "ok": !failed, "findings": findings }))?;
    } else {
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
    Ok(if failed { 1 } else { 0 })
}
