//! `appgear config list|get|set`: read and edit `.env` with validation.

use crate::core::error::{Error, Result};
use crate::core::ui;
use crate::topology_a::env_file::valid_key;
use crate::topology_a::home::Home;
use crate::topology_a::settings::{self, Rule};
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
            let env = home.load_env()?;
            let shown = |k: &str, v: &str| {
                if !show_secrets && settings::key(k).is_some_and(|k| k.rule == Rule::Secret) {
                    "********".to_string()
                } else {
                    v.to_string()
                }
            };
            if json {
                let map: serde_json::Map<String, serde_json::Value> = env
                    .values()
                    .iter()
                    .map(|(k, v)| (k.clone(), serde_json::Value::String(shown(k, v))))
                    .collect();
                ui::print_json(&map)?;
            } else {
                let rows: Vec<Vec<String>> = env
                    .values()
                    .iter()
                    .map(|(k, v)| {
                        vec![
                            k.clone(),
                            shown(k, v),
                            settings::key(k)
                                .map(|k| k.help.to_string())
                                .unwrap_or_default(),
                        ]
                    })
                    .collect();
                print!("{}", ui::table(&["KEY", "VALUE", "MEANING"], &rows));
            }
            Ok(0)
        }
        ConfigCommand::Get { key } => {
            let env = home.load_env()?;
            match env.get(&key) {
                Some(v) => {
                    println!("{v}");
                    Ok(0)
                }
                None => Err(Error::bad_input(format!(
                    "{key} is not set in {}",
                    home.env_path().display()
                ))
                .hint("`appgear config list` shows the keys")),
            }
        }
        ConfigCommand::Set { key, value } => {
            if !valid_key(&key) {
                return Err(
                    Error::bad_input(format!("`{key}` is not a valid variable name"))
                        .hint("use letters, digits and _, not starting with a digit"),
                );
            }
            settings::validate(&key, &value)
                .map_err(|e| Error::bad_input(format!("{key}: {e}")).hint("nothing was changed"))?;
            let _lock = home.lock("config set")?;
            let mut env = home.load_env()?;
            env.set(&key, &value);
            home.save_env(&env)?;
            if settings::key(&key).is_none() {
                ui::warn(&format!(
                    "{key} is not one of appgear's keys; it is kept for your compose file"
                ));
            }
            let shown = if settings::key(&key).is_some_and(|k| k.rule == Rule::Secret) {
                "********"
            } else {
                value.as_str()
            };
            println!("{key}={shown}");
            eprintln!("run `appgear up` to apply it");
            Ok(0)
        }
    }
}
