//! `pterobox`: the operator, its CRDs, an offline checker and a panel simulator in one binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use pterobox::crd::Flavor;
use pterobox::panel::sim::{self, Catalog, Faults, SimConfig};

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
    Run(RunArgs),
    /// Print the CustomResourceDefinitions as YAML.
    Crds,
    /// Validate manifests offline and print the admission verdict per server (exit 1 on any rejection).
    Check(CheckArgs),
    /// Serve an in-memory Pterodactyl or Wisp panel for tests and demos.
    PanelSim(PanelSimArgs),
}

#[derive(clap::Args)]
struct CheckArgs {
    /// Manifest files, or directories searched for `*.yaml`/`*.yml` (recursively).
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    paths: Vec<PathBuf>,
}

/// Collects the YAML files under `path` in a stable order.
fn yaml_files(path: &std::path::Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            let is_yaml = entry.extension().is_some_and(|x| x == "yaml" || x == "yml");
            if entry.is_dir() || is_yaml {
                yaml_files(&entry, out)?;
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

fn check(args: CheckArgs) -> anyhow::Result<std::process::ExitCode> {
    let mut files = Vec::new();
    for path in &args.paths {
        yaml_files(path, &mut files)?;
    }
    let mut documents = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        documents.extend(pterobox::check::parse(&file.display().to_string(), &text).map_err(anyhow::Error::msg)?);
    }
    let report = pterobox::check::check(&documents);
    print!("{}", report.render());
    Ok(if report.failed() { std::process::ExitCode::FAILURE } else { std::process::ExitCode::SUCCESS })
}

#[derive(clap::Args)]
struct RunArgs {
    /// This replica's name in events (`reportingInstance`); defaults to the pod name.
    #[arg(long, env = "POD_NAME", default_value = "pterobox")]
    instance: String,
    /// How often to check a panel server that is still installing, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    install_poll_ms: u64,
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let client = kube::Client::try_default().await?;
    let settings = pterobox::controller::Settings {
        instance: args.instance,
        install_poll: Duration::from_millis(args.install_poll_ms.max(100)),
    };
    tracing::info!(instance = %settings.instance, "pterobox operator starting");
    pterobox::controller::run(client, settings, shutdown_signal()).await
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
}

#[derive(Clone, Copy, ValueEnum)]
enum FlavorArg {
    Pterodactyl,
    Wisp,
}

#[derive(clap::Args)]
struct PanelSimArgs {
    /// Which panel API to speak.
    #[arg(long, value_enum, default_value = "pterodactyl")]
    flavor: FlavorArg,
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:18080")]
    listen: SocketAddr,
    /// The API key clients must send (also read from PTEROBOX_SIM_API_KEY).
    #[arg(long, env = "PTEROBOX_SIM_API_KEY", hide_env_values = true)]
    api_key: String,
    /// Requests allowed per window (0 = no rate limiting).
    #[arg(long, default_value_t = 240)]
    rate_limit: u32,
    /// Length of the rate-limit window, in seconds.
    #[arg(long, default_value_t = 60)]
    rate_window_secs: u64,
    /// How long a new server stays `installing`, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    install_delay_ms: u64,
    /// Latency added to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Fraction of requests answered 500.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Fraction of requests held and then answered 504.
    #[arg(long, default_value_t = 0.0)]
    timeout_rate: f64,
    /// How long a timed-out request is held, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    timeout_hold_ms: u64,
    /// YAML file with locations, nodes and nests/eggs (default: a built-in catalog).
    #[arg(long)]
    seed_file: Option<PathBuf>,
    /// Seed of placement and fault randomness.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

async fn panel_sim(args: PanelSimArgs) -> anyhow::Result<()> {
    let flavor = match args.flavor {
        FlavorArg::Pterodactyl => Flavor::Pterodactyl,
        FlavorArg::Wisp => Flavor::Wisp,
    };
    let catalog = match &args.seed_file {
        Some(path) => Catalog::from_yaml(&std::fs::read_to_string(path)?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        None => Catalog::default(),
    };
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.error_rate),
        "--error-rate must be within 0..1, got {}",
        args.error_rate
    );
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.timeout_rate),
        "--timeout-rate must be within 0..1, got {}",
        args.timeout_rate
    );
    let config = SimConfig {
        rate_limit: args.rate_limit,
        rate_window: Duration::from_secs(args.rate_window_secs.max(1)),
        install_delay: Duration::from_millis(args.install_delay_ms),
        faults: Faults {
            latency_ms: args.latency_ms,
            error_rate: args.error_rate,
            timeout_rate: args.timeout_rate,
            timeout_hold_ms: args.timeout_hold_ms,
            ..Faults::default()
        },
        catalog,
        seed: args.seed,
        ..SimConfig::new(flavor, args.api_key)
    };
    let handle = sim::spawn(config, args.listen).await?;
    tracing::info!(url = %handle.url, ?flavor, "panel-sim listening");
    println!("panel-sim ({flavor:?}) listening on {}", handle.url);
    tokio::signal::ctrl_c().await?;
    Ok(())
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Crds => print!("{}", pterobox::crd::to_yaml()?),
        Command::PanelSim(args) => panel_sim(args).await?,
        Command::Run(args) => run(args).await?,
        Command::Check(args) => return check(args),
    }
    Ok(std::process::ExitCode::SUCCESS)
}
