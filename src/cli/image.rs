//! `appgear image build` and `appgear images save|load|list`: the suite's images without a
//! registry (docs/images.md).

use crate::core::error::Result;
use crate::core::ui;
use crate::topology_a::home::Home;
use crate::topology_b::image::{archive, build};
use crate::topology_b::stages::Profile;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Make ghcr.io/appgear/appgear:<version> from this appgear binary, without any registry.
    Build(BuildArgs),
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// A tag for ghcr.io/appgear/appgear (default: this appgear's version), or a whole name:tag.
    #[arg(long, value_name = "T")]
    pub tag: Option<String>,
    /// Print what was built as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum ImagesCommand {
    /// Write every pinned image of a topology and profile into one archive FILE.
    Save(SaveArgs),
    /// Load an archive written by `images save` into Docker.
    Load(LoadArgs),
    /// The images `save` would write, or with FILE the images an archive holds.
    List(ListArgs),
}

#[derive(Args, Debug)]
pub struct Which {
    /// a: Docker (Traefik and code-server, as the home's .env names them); b: the kind cluster
    /// (node image, add-ons, core-redis, the suite's own image).
    #[arg(long, default_value = "b", value_name = "a|b")]
    pub topology: String,
    /// core, or full (with Airbyte); Topology B only.
    #[arg(long, default_value = "core", value_name = "core|full")]
    pub profile: String,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// The archive to write (replaced when it exists).
    pub file: PathBuf,
    #[command(flatten)]
    pub which: Which,
    /// Print what was saved as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// An archive written by `appgear images save` (or `docker save`).
    pub file: PathBuf,
    /// Print what was loaded as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// An archive to read instead of the pinned list.
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub which: Which,
    #[arg(long)]
    pub json: bool,
}

pub async fn run_image(cmd: ImageCommand) -> Result<i32> {
    match cmd {
        ImageCommand::Build(args) => {
            let built = build::build(args.tag.as_deref()).await?;
            if args.json {
                ui::print_json(&built)?;
            } else {
                ui::out(&built.reference);
            }
            Ok(0)
        }
    }
}

pub async fn run_images(home: &Home, cmd: ImagesCommand) -> Result<i32> {
    match cmd {
        ImagesCommand::Save(args) => {
            let wanted = pinned(home, &args.which)?;
            let saved = archive::save(&wanted, &args.file).await?;
            if args.json {
                ui::print_json(&saved)?;
            }
            Ok(0)
        }
        ImagesCommand::Load(args) => {
            let loaded = archive::load(&args.file).await?;
            if args.json {
                ui::print_json(&loaded)?;
            } else {
                for i in &loaded.images {
                    ui::out(i);
                }
            }
            Ok(0)
        }
        ImagesCommand::List(args) => {
            if let Some(file) = &args.file {
                let names = archive::list_archive(file)?;
                if args.json {
                    ui::print_json(&serde_json::json!({ "file": file, "images": names }))?;
                } else {
                    for n in &names {
                        ui::out(n);
                    }
                }
                return Ok(0);
            }
            let wanted = pinned(home, &args.which)?;
            if args.json {
                ui::print_json(&wanted)?;
            } else {
                let rows: Vec<Vec<String>> = wanted
                    .iter()
                    .map(|w| {
                        vec![
                            w.name.clone(),
                            w.digest.clone().unwrap_or_else(|| "-".into()),
                            w.how.clone(),
                        ]
                    })
                    .collect();
                ui::out(ui::table(&["IMAGE", "DIGEST", "GET IT WITH"], &rows).trim_end());
            }
            Ok(0)
        }
    }
}

fn pinned(home: &Home, which: &Which) -> Result<Vec<archive::Wanted>> {
    let topology = archive::Topology::parse(&which.topology)?;
    let profile = Profile::parse(&which.profile)?;
    archive::wanted(home, topology, profile)
}
