//! The validating admission webhook (TLS): GameServer and GameBox requests are reviewed with the
//! same engine as the controller, over the caches' view of the box's ledger, so that `kubectl apply`
//! and GitOps syncs fail at once with the quota message. The controller stays correct without it.

pub mod certs;
pub mod review;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use kube::ResourceExt;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::runtime::reflector::ObjectRef;
use serde_json::Value;

use crate::controller::Caches;
use crate::crd::{GameBox, GameServer};
use review::Decision;

/// The path the webhook configuration calls.
pub const PATH: &str = "/validate";

/// How often certificate files (cert-manager's, mounted from a Secret) are read again.
pub const CERT_RELOAD_EVERY: Duration = Duration::from_secs(5);

/// Serves the webhook on `listen` until `shutdown` resolves. With `reload_from` (a directory of
/// `tls.crt` and `tls.key`), the files are read again every [`CERT_RELOAD_EVERY`] and a changed pair
/// is served from the next handshake on: cert-manager renews a certificate well before it expires,
/// and a pod serving the old one past its end would make every write fail (`failurePolicy: Fail`).
pub async fn serve(
    listen: SocketAddr,
    cert: certs::ServingCert,
    reload_from: Option<std::path::PathBuf>,
    ctx: Arc<Caches>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let served = (cert.cert_pem.into_bytes(), cert.key_pem.into_bytes());
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem(served.0.clone(), served.1.clone())
        .await
        .map_err(|e| anyhow::anyhow!("webhook certificate: {e}"))?;
    if let Some(dir) = reload_from {
        tokio::spawn(reload_when_changed(tls.clone(), dir, served));
    }
    let app = Router::new().route(PATH, post(validate)).with_state(ctx);
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    tracing::info!(%listen, path = PATH, "serving the admission webhook");
    axum_server::bind_rustls(listen, tls).handle(handle).serve(app.into_make_service()).await?;
    Ok(())
}

/// Serves the files' certificate and key once they differ from `served` (and parse as a pair: a
/// half-written update is tried again at the next look).
async fn reload_when_changed(
    tls: axum_server::tls_rustls::RustlsConfig,
    dir: std::path::PathBuf,
    mut served: (Vec<u8>, Vec<u8>),
) {
    let mut failed: Option<(Vec<u8>, Vec<u8>)> = None;
    loop {
        tokio::time::sleep(CERT_RELOAD_EVERY).await;
        let (Ok(cert), Ok(key)) = (std::fs::read(dir.join("tls.crt")), std::fs::read(dir.join("tls.key"))) else {
            continue;
        };
        let files = (cert, key);
        if files == served || failed.as_ref() == Some(&files) {
            continue;
        }
        match tls.reload_from_pem(files.0.clone(), files.1.clone()).await {
            Ok(()) => {
                tracing::info!(dir = %dir.display(), "serving the webhook's renewed certificate");
                served = files;
                failed = None;
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "the webhook's new certificate files do not load; serving the previous ones");
                failed = Some(files);
            }
        }
    }
}

async fn validate(
    State(ctx): State<Arc<Caches>>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "an admission review the webhook cannot read");
            crate::metrics::get().webhook_review("unknown", "invalid");
            return Json(AdmissionResponse::invalid(e.to_string()).into_review());
        }
    };
    let decision = decide(&ctx, &request);
    let verdict = match decision {
        Decision::Allow { .. } => "allowed",
        Decision::Deny { .. } => "denied",
    };
    crate::metrics::get().webhook_review(&request.kind.kind, verdict);
    tracing::debug!(
        kind = %request.kind.kind, namespace = ?request.namespace, name = %request.name,
        dry_run = request.dry_run, ?decision, "admission review"
    );
    let mut response = AdmissionResponse::from(&request);
    match decision {
        Decision::Allow { warnings } if !warnings.is_empty() => response.warnings = Some(warnings),
        Decision::Allow { .. } => {}
        Decision::Deny { message } => response = response.deny(message),
    }
    Json(response.into_review())
}

fn as_value(object: Option<&DynamicObject>) -> Option<Value> {
    object.and_then(|o| serde_json::to_value(o).ok())
}

/// The verdict on one request. Reads only the caches: no side effects, so dry runs are honoured.
fn decide(ctx: &Caches, request: &AdmissionRequest<DynamicObject>) -> Decision {
    if !matches!(request.operation, Operation::Create | Operation::Update) {
        return Decision::Allow { warnings: Vec::new() };
    }
    let Some(object) = as_value(request.object.as_ref()) else {
        return Decision::Deny { message: "the request has no object".into() };
    };
    let old = as_value(request.old_object.as_ref());
    if let Some(denied) = review::schema(&object, old.as_ref()) {
        return denied;
    }
    if !ctx.synced() {
        return Decision::Allow {
            warnings: vec!["the operator's caches are still syncing: the budget is checked by the controller".into()],
        };
    }
    let namespace = request.namespace.clone().unwrap_or_default();
    let servers_of =
        |box_name: &str| crate::controller::gamebox::servers_named(ctx, Some(namespace.as_str()), box_name);
    // The controller reports the same error on the box.
    let unread =
        |e: String| Decision::Allow { warnings: vec![format!("{e}: the budget is checked by the controller")] };
    let parse_error = |e: serde_json::Error| Decision::Deny { message: format!("cannot read the object: {e}") };
    match request.kind.kind.as_str() {
        "GameServer" => {
            let server: GameServer = match serde_json::from_value(object) {
                Ok(s) => s,
                Err(e) => return parse_error(e),
            };
            let old: Option<GameServer> = old.and_then(|o| serde_json::from_value(o).ok());
            let gbox = ctx.boxes.get(&ObjectRef::new(&server.spec.box_name).within(&namespace));
            let others = match servers_of(&server.spec.box_name) {
                Ok(others) => others,
                Err(e) => return unread(e),
            };
            let others: Vec<&GameServer> = others.iter().collect();
            review::review_server(&server, old.as_ref(), gbox.as_deref(), &others)
        }
        "GameBox" => {
            let gbox: GameBox = match serde_json::from_value(object) {
                Ok(b) => b,
                Err(e) => return parse_error(e),
            };
            // The ledger lives in status, which a spec update does not carry: take it from the cache.
            let mut gbox = gbox;
            if gbox.status.is_none() {
                gbox.status = ctx.boxes.get(&ObjectRef::from_obj(&gbox)).and_then(|b| b.status.clone());
            }
            let panel = ctx.panels.get(&ObjectRef::new(&gbox.spec.panel_ref));
            let servers = match servers_of(&gbox.name_any()) {
                Ok(servers) => servers,
                Err(e) => return unread(e),
            };
            let servers: Vec<&GameServer> = servers.iter().collect();
            review::review_box(&gbox, panel.as_deref(), &servers)
        }
        _ => Decision::Allow { warnings: Vec::new() },
    }
}
