//! `pterobox`: the operator, its CRDs, an offline checker and a panel simulator in one binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use pterobox::crd::Flavor;
use pterobox::leader::{Leadership, LeaseSettings};
use pterobox::sim::{self, Catalog, Faults, SimConfig};
use pterobox::webhook::certs;

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
    /// This replica's name: the leader Lease holder and `reportingInstance` of events.
    #[arg(long, env = "POD_NAME", default_value = "pterobox")]
    instance: String,
    /// The operator's own namespace: its leader Lease and webhook certificate Secret live there.
    #[arg(long, env = "POD_NAMESPACE", default_value = "pterobox-system")]
    namespace: String,
    /// How often to check a panel server that is still installing, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    install_poll_ms: u64,
    /// How long a panel server may install before its GameServer says so (Ready=False
    /// InstallTimeout and a Warning event), in seconds.
    #[arg(long, default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..))]
    install_timeout_secs: u64,
    /// Reconciles run at once, per kind (others wait their turn; a reconcile that waits for a
    /// panel's request budget holds its place).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8080")]
    probe_addr: SocketAddr,
    /// Elect a leader on a Lease (off: this replica always leads; run only one).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// Name of the leader Lease.
    #[arg(long, default_value = "pterobox")]
    lease_name: String,
    /// How long the leader Lease is valid without renewal, in seconds.
    #[arg(long, default_value_t = 15)]
    lease_duration_secs: u64,
    /// Serve the validating admission webhook.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    webhook: bool,
    /// Address of the webhook (TLS).
    #[arg(long, default_value = "0.0.0.0:9443")]
    webhook_addr: SocketAddr,
    /// Directory with `tls.crt` and `tls.key` (cert-manager); without it the operator makes its own.
    #[arg(long)]
    webhook_cert_dir: Option<PathBuf>,
    /// Secret (in --namespace) that keeps the operator-made webhook certificate.
    #[arg(long, default_value = "pterobox-webhook-tls")]
    webhook_secret: String,
    /// ValidatingWebhookConfiguration whose caBundle the operator fills.
    #[arg(long, default_value = "pterobox")]
    webhook_config: String,
    /// Service in front of the webhook: its DNS names go into the certificate.
    #[arg(long, default_value = "pterobox-webhook")]
    webhook_service: String,
    /// More names or IP addresses for the webhook certificate (repeatable).
    #[arg(long)]
    webhook_host: Vec<String>,
    /// Log format: JSON for a cluster, text for a terminal (auto: text when stderr is a terminal).
    #[arg(long, value_enum, default_value = "auto")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Auto,
    Json,
    Text,
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    // kube and the webhook both use rustls; one process-wide provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = kube::Client::try_default().await?;
    let settings = pterobox::controller::Settings {
        instance: args.instance.clone(),
        install_poll: Duration::from_millis(args.install_poll_ms.max(100)),
        install_timeout: Duration::from_secs(args.install_timeout_secs),
        concurrency: args.concurrency,
    };
    tracing::info!(instance = %settings.instance, namespace = %args.namespace, "pterobox operator starting");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });

    let health = pterobox::http::Health::default();
    let probes = tokio::spawn(pterobox::http::serve(args.probe_addr, health.clone(), stopped()));
    tokio::spawn({
        let (health, client) = (health.clone(), client.clone());
        async move { health.wait_crds_established(client).await }
    });

    let (leadership, election) = if args.leader_election {
        let lease = LeaseSettings::new(
            &args.namespace,
            &args.lease_name,
            &args.instance,
            Duration::from_secs(args.lease_duration_secs.max(2)),
        );
        let (leadership, task) = pterobox::leader::start(client.clone(), lease, stopped());
        (leadership, Some(task))
    } else {
        pterobox::metrics::get().set_leader(true);
        (Leadership::always(), None)
    };

    let webhook = if args.webhook { Some(webhook_cert(&args, &client).await?) } else { None };
    let webhook_addr = args.webhook_addr;
    let webhook_task = std::sync::Arc::new(std::sync::Mutex::new(None));
    let webhook_slot = webhook_task.clone();
    let controllers = pterobox::controller::run(
        client,
        settings,
        leadership,
        |ctx| {
            health.watch(ctx.clone());
            if let Some(cert) = webhook {
                let task = tokio::spawn(pterobox::webhook::serve(webhook_addr, cert, ctx.clone(), stopped()));
                *webhook_slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
            }
        },
        stopped(),
    );
    tokio::pin!(controllers);
    let mut election = election;
    let lost = {
        let lost = async {
            match election.as_mut() {
                Some(task) => Some(task.await),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = &mut controllers => { result?; None }
            lost = lost => lost,
        }
    };
    match lost {
        // Stopped: a leader hands its Lease back before the process exits.
        None => {
            if let Some(task) = election {
                let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
            }
        }
        // A replica that may no longer lead stops at once: the next leader starts from the cluster.
        Some(Ok(Err(lost))) => anyhow::bail!("{lost}"),
        Some(Ok(Ok(()))) => controllers.await?,
        Some(Err(e)) => anyhow::bail!("leader election task failed: {e}"),
    }
    let webhook_task = webhook_task.lock().unwrap_or_else(|p| p.into_inner()).take();
    for task in [Some(probes), webhook_task].into_iter().flatten() {
        if let Ok(Err(e)) = task.await {
            tracing::warn!(error = %e, "a server stopped with an error");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// The webhook's serving certificate, and (when the operator made it) the task keeping its CA in
/// the webhook configuration.
async fn webhook_cert(args: &RunArgs, client: &kube::Client) -> anyhow::Result<certs::ServingCert> {
    let source = match &args.webhook_cert_dir {
        Some(dir) => certs::TlsSource::Files(dir.clone()),
        None => {
            let (svc, ns) = (&args.webhook_service, &args.namespace);
            let mut hosts = vec![
                svc.clone(),
                format!("{svc}.{ns}"),
                format!("{svc}.{ns}.svc"),
                format!("{svc}.{ns}.svc.cluster.local"),
            ];
            hosts.extend(args.webhook_host.iter().cloned());
            certs::TlsSource::Managed {
                namespace: ns.clone(),
                secret: args.webhook_secret.clone(),
                webhook_config: args.webhook_config.clone(),
                hosts,
            }
        }
    };
    let cert = certs::load(client, &source).await?;
    if let (certs::TlsSource::Managed { webhook_config, .. }, Some(ca)) = (&source, &cert.ca_pem) {
        tokio::spawn(certs::keep_ca_bundle(client.clone(), webhook_config.clone(), ca.clone()));
    }
    Ok(cert)
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
    /// Wisp: show `container.installed` as 0/1/2 rather than a bool (both forms are inferred).
    #[arg(long)]
    wisp_installed_as_number: bool,
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
        wisp_installed_as_number: args.wisp_installed_as_number,
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
    heap::one_arena();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async_main())
}

/// glibc's malloc keeps what Rust frees in per-thread arenas and gives little of it back: after a
/// convergence of 10,000 servers about an eighth of the operator's resident memory was free heap.
/// The operator uses one arena, which its few threads share, and trims it every few seconds.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod heap {
    use std::time::Duration;

    /// Must run before any other thread starts.
    pub fn one_arena() {
        // SAFETY: mallopt only sets a parameter of the allocator.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    }

    /// Returns the arena's free pages to the system every `period`.
    pub fn trim_every(period: Duration) {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                // SAFETY: malloc_trim only releases pages that hold no allocation.
                unsafe { libc::malloc_trim(0) };
            }
        });
    }
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
        Command::Crds => print!("{}", pterobox::crd::to_yaml()?),
        Command::PanelSim(args) => panel_sim(args).await?,
        Command::Run(args) => {
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            heap::trim_every(Duration::from_secs(2));
            run(args).await?
        }
        Command::Check(args) => return check(args),
    }
    Ok(std::process::ExitCode::SUCCESS)
}
