//! `pterobox run`: the controllers, the admission webhook, health and metrics, and leader election,
//! wired together; and the process's heap tuning.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;

use crate::leader::{Leadership, LeaseSettings};
use crate::webhook::certs;

/// `pterobox run`.
#[derive(clap::Args)]
pub struct Args {
    /// This replica's name: the leader Lease holder and `reportingInstance` of events.
    #[arg(long, env = "POD_NAME", default_value = "pterobox")]
    pub instance: String,
    /// The operator's own namespace: its leader Lease and webhook certificate Secret live there.
    #[arg(long, env = "POD_NAMESPACE", default_value = "pterobox-system")]
    pub namespace: String,
    /// The cluster to run against (in a pod: its service account).
    #[command(flatten)]
    pub cluster: crate::kubeconfig::ClusterArgs,
    /// Namespaces whose Secrets GamePanels may name (comma-separated; `*` for every namespace). The
    /// operator reads and watches Secrets there only. Default: its own namespace.
    #[arg(long, env = "PTEROBOX_SECRET_NAMESPACES", value_delimiter = ',')]
    pub secret_namespaces: Option<Vec<String>>,
    /// How often to check a panel server that is still installing, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub install_poll_ms: u64,
    /// How long a panel server may install before its GameServer says so (Ready=False
    /// InstallTimeout and a Warning event), in seconds.
    #[arg(long, default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..))]
    pub install_timeout_secs: u64,
    /// Reconciles run at once, per kind (others wait their turn; a reconcile that waits for a
    /// panel's request budget or answer holds its place; with more than one GamePanel, one panel
    /// holds at most half of them).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub probe_addr: SocketAddr,
    /// Elect a leader on a Lease (off: this replica always leads; run only one).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the leader Lease.
    #[arg(long, default_value = "pterobox")]
    pub lease_name: String,
    /// How long the leader Lease is valid without renewal, in seconds.
    #[arg(long, default_value_t = 15)]
    pub lease_duration_secs: u64,
    /// Serve the validating admission webhook.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub webhook: bool,
    /// Address of the webhook (TLS).
    #[arg(long, default_value = "0.0.0.0:9443")]
    pub webhook_addr: SocketAddr,
    /// Directory with `tls.crt` and `tls.key` (cert-manager); without it the operator makes its own.
    #[arg(long)]
    pub webhook_cert_dir: Option<PathBuf>,
    /// Secret (in --namespace) that keeps the operator-made webhook certificate.
    #[arg(long, default_value = "pterobox-webhook-tls")]
    pub webhook_secret: String,
    /// ValidatingWebhookConfiguration whose caBundle the operator fills.
    #[arg(long, default_value = "pterobox")]
    pub webhook_config: String,
    /// Service in front of the webhook: its DNS names go into the certificate.
    #[arg(long, default_value = "pterobox-webhook")]
    pub webhook_service: String,
    /// More names or IP addresses for the webhook certificate (repeatable).
    #[arg(long)]
    pub webhook_host: Vec<String>,
    /// Log format: JSON for a cluster, text for a terminal (auto: text when stderr is a terminal).
    #[arg(long, value_enum, default_value = "auto")]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Auto,
    Json,
    Text,
}

/// Runs the controllers, the webhook and the probes until SIGTERM (or a lost Lease).
pub async fn run(args: Args) -> anyhow::Result<()> {
    // kube and the webhook both use rustls; one process-wide provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = args.cluster.client().await?;
    let settings = crate::controller::Settings {
        instance: args.instance.clone(),
        install_poll: Duration::from_millis(args.install_poll_ms.max(100)),
        install_timeout: Duration::from_secs(args.install_timeout_secs),
        concurrency: args.concurrency,
        secrets: crate::controller::SecretScope::parse(
            args.secret_namespaces.as_deref().unwrap_or(std::slice::from_ref(&args.namespace)),
        ),
    };
    tracing::info!(
        instance = %settings.instance,
        namespace = %args.namespace,
        secrets = %settings.secrets.describe(),
        "pterobox operator starting"
    );
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

    let health = crate::http::Health::default();
    let probes = tokio::spawn(crate::http::serve(args.probe_addr, health.clone(), stopped()));
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
        let (leadership, task) = crate::leader::start(client.clone(), lease, stopped());
        (leadership, Some(task))
    } else {
        crate::metrics::get().set_leader(true);
        (Leadership::always(), None)
    };

    let webhook = if args.webhook { Some(webhook_cert(&args, &client).await?) } else { None };
    let webhook_addr = args.webhook_addr;
    let reload_from = args.webhook_cert_dir.clone();
    let webhook_task = std::sync::Arc::new(std::sync::Mutex::new(None));
    let webhook_slot = webhook_task.clone();
    let controllers = crate::controller::run(
        client,
        settings,
        leadership,
        |ctx| {
            health.watch(ctx.caches.clone());
            if let Some(cert) = webhook {
                let task =
                    tokio::spawn(crate::webhook::serve(webhook_addr, cert, reload_from, ctx.caches.clone(), stopped()));
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
async fn webhook_cert(args: &Args, client: &kube::Client) -> anyhow::Result<certs::ServingCert> {
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

/// glibc's malloc keeps what Rust frees in per-thread arenas and gives little of it back: after a
/// convergence of 10,000 servers about an eighth of the operator's resident memory was free heap.
/// The operator uses one arena, which its few threads share, and trims it every few seconds; and
/// blocks of 128 KiB or more (a response body, a cache's table as it grows) are mapped on their own
/// and unmapped when freed — glibc's default threshold rises to each large block freed, after which
/// such blocks come from the arena and leave holes in it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub mod heap {
    use std::time::Duration;

    /// Must run before any other thread starts.
    pub fn one_arena() {
        // SAFETY: mallopt only sets a parameter of the allocator.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
        // SAFETY: as above.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
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
