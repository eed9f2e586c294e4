//! `pterobox`: the operator, its CRDs, an offline checker and a panel simulator in one binary.

use clap::{Parser, Subcommand};

/// PteroBox sells boxes of game-server resources on a Pterodactyl or Wisp panel.
#[derive(Parser)]
#[command(name = "pterobox", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers, the admission webhook, metrics and health endpoints.
    Run,
    /// Print the CustomResourceDefinitions as YAML.
    Crds,
    /// Validate manifests offline and print the admission verdict per server.
    Check,
    /// Serve an in-memory Pterodactyl or Wisp panel for tests and demos.
    PanelSim,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let name = match cli.command {
        Command::Crds => {
            print!("{}", pterobox::crd::to_yaml()?);
            return Ok(());
        }
        Command::Run => "run",
        Command::Check => "check",
        Command::PanelSim => "panel-sim",
    };
    anyhow::bail!("`pterobox {name}` is not implemented yet")
}
