//! The command line of `pterobox panel-sim`: its flags, mapped onto a [`SimConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;

use super::{Catalog, Faults, SimConfig};
use crate::crd::Flavor;

#[derive(Clone, Copy, ValueEnum)]
pub enum FlavorArg {
    Pterodactyl,
    Wisp,
    Pelican,
}

/// `pterobox panel-sim`.
#[derive(clap::Args)]
pub struct Args {
    /// Which panel API to speak.
    #[arg(long, value_enum, default_value = "pterodactyl")]
    flavor: FlavorArg,
    /// Address to listen on: a loopback one, unless --listen-beyond-loopback.
    #[arg(long, default_value = "127.0.0.1:18080")]
    listen: SocketAddr,
    /// Allow --listen on an address that is not loopback (a pod IP in a trial cluster). The
    /// simulator is for tests, demos and trials: never put real customers on it.
    #[arg(long)]
    listen_beyond_loopback: bool,
    /// With --flavor pelican: answer as Pelican v1.0.0-beta38 where it differs from beta17 (deploy
    /// filters nodes by tags; 256 requests a minute unless --rate-limit says otherwise).
    #[arg(long)]
    pelican_beta38: bool,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
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
    /// Wisp: show `container.installed` as 0/1/2 rather than a bool (both forms are inferred).
    #[arg(long)]
    wisp_installed_as_number: bool,
    /// Accept a second server or user with an `external_id` already taken (Pterodactyl refuses it
    /// with a 422; whether Wisp does is unverified).
    #[arg(long)]
    external_ids_not_unique: bool,
    /// Accept a second user with an e-mail or username already taken (both panels refuse it with a
    /// 422): only the client's own lookups then keep users unique.
    #[arg(long)]
    users_not_unique: bool,
    /// YAML file with locations, nodes and nests/eggs (default: a built-in catalog).
    #[arg(long)]
    seed_file: Option<PathBuf>,
    /// Seed of placement and fault randomness.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Serves a simulated panel until Ctrl-C.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let flavor = match args.flavor {
        FlavorArg::Pterodactyl => Flavor::Pterodactyl,
        FlavorArg::Wisp => Flavor::Wisp,
        FlavorArg::Pelican => Flavor::Pelican,
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
    let read = |path: &PathBuf| std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(super::SimTls { cert_pem: read(cert)?, key_pem: read(key)? }),
        _ => None,
    };
    // beta38's application API allows 256 a minute (`config/http.php`), beta17's 240.
    let rate_limit = if args.pelican_beta38 && args.rate_limit == 240 { 256 } else { args.rate_limit };
    let config = SimConfig {
        rate_limit,
        rate_window: Duration::from_secs(args.rate_window_secs.max(1)),
        install_delay: Duration::from_millis(args.install_delay_ms),
        wisp_installed_as_number: args.wisp_installed_as_number,
        unique_external_ids: !args.external_ids_not_unique,
        unique_users: !args.users_not_unique,
        faults: Faults {
            latency_ms: args.latency_ms,
            error_rate: args.error_rate,
            timeout_rate: args.timeout_rate,
            timeout_hold_ms: args.timeout_hold_ms,
            ..Faults::default()
        },
        catalog,
        seed: args.seed,
        tls,
        beyond_loopback: args.listen_beyond_loopback,
        pelican_beta38: args.pelican_beta38,
        ..SimConfig::new(flavor, args.api_key)
    };
    let handle = super::spawn(config, args.listen).await?;
    tracing::info!(url = %handle.url, ?flavor, "panel-sim listening");
    println!("panel-sim ({flavor:?}) listening on {}", handle.url);
    // Ctrl-C, or the SIGTERM a pod is stopped with.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
