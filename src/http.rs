//! The plain-HTTP endpoints of `pterobox run`: `/healthz` (the process answers), `/readyz` (CRDs
//! established and caches synced) and `/metrics` (Prometheus text format).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;

use crate::controller::Caches;

/// What `/readyz` reports.
#[derive(Clone, Default)]
pub struct Health {
    crds_established: Arc<AtomicBool>,
    controllers: Arc<OnceLock<Arc<Caches>>>,
}

impl Health {
    /// Readiness follows these controllers' caches from now on.
    pub fn watch(&self, caches: Arc<Caches>) {
        let _ = self.controllers.set(caches);
    }

    /// `Ok` when ready, else why not.
    pub fn ready(&self) -> Result<(), &'static str> {
        if !self.crds_established.load(Ordering::SeqCst) {
            return Err("the CRDs are not established yet");
        }
        if !self.controllers.get().is_some_and(|c| c.synced()) {
            return Err("the caches have not synced yet");
        }
        Ok(())
    }

    /// Polls the three CRDs until each reports `Established=True`.
    pub async fn wait_crds_established(&self, client: kube::Client) {
        let api: Api<CustomResourceDefinition> = Api::all(client);
        let names: Vec<String> = crate::crd::all().into_iter().filter_map(|c| c.metadata.name).collect();
        loop {
            let mut missing = Vec::new();
            for name in &names {
                let established = match api.get_opt(name).await {
                    Ok(Some(crd)) => crd
                        .status
                        .and_then(|s| s.conditions)
                        .unwrap_or_default()
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True"),
                    Ok(None) => false,
                    Err(e) => {
                        tracing::warn!(crd = %name, error = %e, "cannot read a CRD");
                        false
                    }
                };
                if !established {
                    missing.push(name.as_str());
                }
            }
            if missing.is_empty() {
                self.crds_established.store(true, Ordering::SeqCst);
                return;
            }
            tracing::info!(?missing, "waiting for the CRDs to be established");
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(health): State<Health>) -> impl IntoResponse {
    match health.ready() {
        Ok(()) => (StatusCode::OK, "ok"),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

/// The exposition is written on a blocking thread and sent piece by piece as it is written: the
/// encoder holds the metrics' locks while it writes, so it never waits for the client.
async fn metrics() -> impl IntoResponse {
    let (pieces, mut receive) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::task::spawn_blocking(move || crate::metrics::get().encode_in_pieces(|piece| pieces.send(piece).is_ok()));
    let body =
        futures::stream::poll_fn(move |cx| receive.poll_recv(cx).map(|p| p.map(Ok::<_, std::convert::Infallible>)));
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        axum::body::Body::from_stream(body),
    )
}

/// Serves the endpoints on `addr` until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    health: Health,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health);
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    tracing::info!(%addr, "serving /healthz, /readyz and /metrics");
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    Ok(())
}
