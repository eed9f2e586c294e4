//! `pterobox`: the operator, its CRDs, an offline checker and a panel simulator in one binary.

use std::time::Duration;

use clap::{Parser, Subcommand};
use pterobox::operator::LogFormat;

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
    Run(pterobox::operator::Args),
    /// Print the CustomResourceDefinitions as YAML (or the field reference, docs/reference.md).
    Crds {
        /// The field reference in Markdown instead: every field, its type and description.
        #[arg(long)]
        reference: bool,
    },
    /// Validate manifests (offline, or against a cluster with --from-cluster) and print the admission
    /// verdict per server (exit 1: a server over its budget; 2: input that is wrong; 3: a file or
    /// the cluster that cannot be read).
    Check(pterobox::check::Args),
    /// Write GameBox and GameServer manifests that adopt what already runs on a panel (reads only).
    Import(pterobox::import::Args),
    /// Check a panel before pointing PteroBox at it: read-only by default; `--write` makes, changes
    /// and deletes a throwaway user and server (and cleans up whatever happens). Exit 1 on a failed check.
    Conformance(pterobox::conformance::Args),
    /// Remove PteroBox's finalizer from GameServers and GameBoxes left behind by an uninstalled
    /// operator (their panel servers stay on the panel); asks first.
    Release(pterobox::release::Args),
    /// Serve an in-memory Pterodactyl or Wisp panel for tests and demos.
    PanelSim(pterobox::sim::cli::Args),
    /// Print the version (also `--version`), the API group and version it serves.
    Version,
    /// Print a shell completion script, e.g. `pterobox completions bash > /etc/bash_completion.d/pterobox`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        logs.json().flatten_event(true).with_current_span(true).init();
    } else {
        logs.init();
    }
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    pterobox::operator::heap::one_arena();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async_main())
}

async fn async_main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    let json = match &cli.command {
        Command::Run(args) => match args.log_format {
            LogFormat::Json => true,
            LogFormat::Text => false,
            LogFormat::Auto => !std::io::IsTerminal::is_terminal(&std::io::stderr()),
        },
        _ => false,
    };
    init_tracing(json);
    match cli.command {
        Command::Crds { reference: false } => print!("{}", pterobox::crd::to_yaml()?),
        Command::Crds { reference: true } => print!("{}", pterobox::crd::reference::markdown()),
        Command::Version => println!(
            "pterobox {} ({}/{}, kinds GamePanel, GameBox, GameServer)",
            env!("CARGO_PKG_VERSION"),
            pterobox::names::GROUP,
            pterobox::names::VERSION
        ),
        Command::Completions { shell } => clap_complete::generate(
            shell,
            &mut <Cli as clap::CommandFactory>::command(),
            "pterobox",
            &mut std::io::stdout(),
        ),
        Command::PanelSim(args) => pterobox::sim::cli::run(args).await?,
        Command::Run(args) => {
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            pterobox::operator::heap::trim_every(Duration::from_secs(2));
            pterobox::operator::run(args).await?
        }
        Command::Check(args) => return pterobox::check::run(args).await,
        Command::Import(args) => return pterobox::import::run(args).await,
        Command::Conformance(args) => return pterobox::conformance::run(args).await,
        Command::Release(args) => return pterobox::release::run(args).await,
    }
    Ok(std::process::ExitCode::SUCCESS)
}
