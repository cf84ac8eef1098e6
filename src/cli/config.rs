//! `appgear config list|get|set`: read and edit `.env` with validation.

use crate::core::error::Result;
use crate::core::ui;
use crate::topology_a::config;
use crate::topology_a::home::Home;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Every key with its value (secrets masked unless --show-secrets).
    List {
        #[arg(long)]
        json: bool,
        #[arg(long)]
        show_secrets: bool,
    },
    /// Print one value.
    Get { key: String },
    /// Set one value after checking it.
    Set { key: String, value: String },
}

pub fn run(home: &Home, cmd: ConfigCommand) -> Result<i32> {
    match cmd {
        ConfigCommand::List { json, show_secrets } => {
            let entries = config::list(home, show_secrets)?;
            if json {
                let map: serde_json::Map<String, serde_json::Value> = entries
                    .into_iter()
                    .map(|e| (e.key, serde_json::Value::String(e.value)))
                    .collect();
                ui::print_json(&map)?;
            } else {
                let rows: Vec<Vec<String>> = entries
                    .into_iter()
                    .map(|e| vec![e.key, e.value, e.help])
                    .collect();
                ui::out(ui::table(&["KEY", "VALUE", "MEANING"], &rows).trim_end_matches('\n'));
            }
        }
        ConfigCommand::Get { key } => ui::out(config::get(home, &key)?),
        ConfigCommand::Set { key, value } => {
            let set = config::set(home, &key, &value)?;
            // Topology B's keys live in the same `.env`; its own commands check their values.
            let cluster_key = crate::topology_b::settings::KEYS
                .iter()
                .any(|k| k.name == key);
            if set.unknown_key && !cluster_key {
                ui::warn(&format!(
                    "{key} is not one of appgear's keys; it is kept for your compose file"
                ));
            }
            ui::out(format!("{key}={}", set.shown));
            ui::err(if cluster_key {
                "run `appgear cluster up` to apply it"
            } else {
                "run `appgear up` to apply it"
            });
        }
    }
    Ok(0)
}
