//! GamePanel: reads the API key from its Secret, checks it against the panel, keeps the panel's
//! handle (client, lister) and fills `status.catalog`. Re-checks when the Secret changes.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Client, ResourceExt};
use tracing::Instrument;

use super::conditions::{Want, merge};
use super::{Context, Outcome, Result, apply_status, parse_duration};
use crate::crd::{CatalogEgg, CatalogLocation, GamePanel, GamePanelStatus, PanelCatalog, PanelId};
use crate::names::{Reason, condition};
use crate::panel::informer::PanelHandle;
use crate::panel::{self, ApiKey, HttpSettings, PanelError, TlsTrust};

/// The namespaces whose Secrets the operator may read (and watch the metadata of): a GamePanel's
/// key must be in one of them. The chart grants exactly these (a Role in each), so the operator
/// cannot read a Secret anywhere else in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretScope {
    /// Every namespace (`*`: cluster-wide rights, as a single-tenant or development cluster may give).
    All,
    /// These namespaces only.
    Namespaces(Vec<String>),
}

impl SecretScope {
    /// From the `--secret-namespaces` list: `*` for every namespace, else the names given
    /// (empty entries dropped).
    pub fn parse(list: &[String]) -> Self {
        let names: Vec<String> = list.iter().map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect();
        if names.iter().any(|n| n == "*") { SecretScope::All } else { SecretScope::Namespaces(names) }
    }

    pub fn allows(&self, namespace: &str) -> bool {
        match self {
            SecretScope::All => true,
            SecretScope::Namespaces(names) => names.iter().any(|n| n == namespace),
        }
    }

    /// For messages: `ops, games` or `every namespace`.
    pub fn describe(&self) -> String {
        match self {
            SecretScope::All => "every namespace".to_string(),
            SecretScope::Namespaces(names) if names.is_empty() => "no namespace".to_string(),
            SecretScope::Namespaces(names) => names.join(", "),
        }
    }
}

/// Each reconcile re-reads the catalog; without a change it comes back this often (eggs and
/// locations rarely change, and the servers' own resync does not need them).
const CATALOG_REFRESH: Duration = Duration::from_secs(600);

/// The GamePanel controller; `health` names a panel whose listings started or stopped failing (all
/// panels are then looked at again: they are few, and this is rare). Its cache names, on `changed`,
/// every panel it applies (for the GameBox controller, whose readiness reads this cache).
pub fn controller(
    client: Client,
    secrets: &SecretScope,
    health: tokio::sync::mpsc::Receiver<String>,
    changed: tokio::sync::mpsc::UnboundedSender<String>,
) -> Controller<GamePanel> {
    let health = futures::stream::unfold(health, |mut rx| async move {
        let name = rx.recv().await?;
        tracing::info!(panel = %name, "the panel's listings changed health");
        Some(((), rx))
    });
    let controller = super::triggers::slim_controller(
        Api::<GamePanel>::all(client.clone()),
        changed,
        |p| Some(p.name_any()),
        |_| None,
        |_| None,
        |_, _| {},
    )
    .reconcile_all_on(health);
    // Metadata only: a Secret's change of resourceVersion is the trigger; its data is never cached.
    // Watched only where the operator may read Secrets (one watch per namespace).
    let watched: Vec<Api<PartialObjectMeta<Secret>>> = match secrets {
        SecretScope::All => vec![Api::all(client)],
        SecretScope::Namespaces(names) => names.iter().map(|ns| Api::namespaced(client.clone(), ns)).collect(),
    };
    watched.into_iter().fold(controller, |controller, secrets| {
        let store = controller.store();
        controller.watches(secrets, watcher::Config::default(), move |secret| {
            let (ns, name) = (secret.namespace().unwrap_or_default(), secret.name_any());
            store
                .state()
                .into_iter()
                .filter(|p| {
                    let credentials = &p.spec.credentials_secret_ref;
                    let ca = p.spec.ca_secret_ref.as_ref().map(|c| (c.namespace.as_str(), c.name.as_str()));
                    (credentials.namespace == ns && credentials.name == name)
                        || ca == Some((ns.as_str(), name.as_str()))
                })
                .map(|p| ObjectRef::from_obj(&*p))
                .collect::<Vec<_>>()
        })
    })
}

/// The resync interval of a panel (the schema guarantees it parses; 5m otherwise).
pub fn resync_interval(panel: &GamePanel) -> Duration {
    parse_duration(&panel.spec.resync_interval).unwrap_or(Duration::from_secs(300)).max(Duration::from_secs(10))
}

/// What the panel's Secrets give: the API key and the trust for its TLS certificate, or why not
/// (a Secret outside the namespaces the operator may read, or refused by RBAC; missing; without its
/// key; a CA bundle without a certificate).
async fn read_secrets(
    client: &Client,
    scope: &SecretScope,
    panel: &GamePanel,
) -> Result<std::result::Result<(ApiKey, TlsTrust), (Reason, String)>> {
    let r = &panel.spec.credentials_secret_ref;
    let secret = match read_secret(client, scope, "spec.credentialsSecretRef", &r.namespace, &r.name).await? {
        Ok(secret) => secret,
        Err(why) => return Ok(Err(why)),
    };
    let Some(key) = api_key_in(&secret, &r.key) else {
        let message = format!("spec.credentialsSecretRef: Secret {}/{} has no key {:?}", r.namespace, r.name, r.key);
        return Ok(Err((Reason::CredentialsMissing, message)));
    };
    let mut trust = TlsTrust { ca_pem: None, system_roots: panel.spec.trust_system_roots };
    if let Some(ca) = &panel.spec.ca_secret_ref {
        let secret = match read_secret(client, scope, "spec.caSecretRef", &ca.namespace, &ca.name).await? {
            Ok(secret) => secret,
            Err(why) => return Ok(Err(why)),
        };
        let where_ = format!("spec.caSecretRef: key {:?} of Secret {}/{}", ca.key, ca.namespace, ca.name);
        let Some(pem) = secret.data.as_ref().and_then(|d| d.get(&ca.key)).map(|v| v.0.clone()) else {
            return Ok(Err((Reason::CredentialsMissing, format!("{where_} does not exist"))));
        };
        if let Err(e) = TlsTrust::certificates(&pem) {
            return Ok(Err((Reason::CABundleInvalid, format!("{where_} {e}"))));
        }
        trust.ca_pem = Some(pem);
    }
    Ok(Ok((key, trust)))
}

/// A Secret the GamePanel names in `field`, or why it cannot be read.
async fn read_secret(
    client: &Client,
    scope: &SecretScope,
    field: &str,
    namespace: &str,
    name: &str,
) -> Result<std::result::Result<Secret, (Reason, String)>> {
    let out_of_scope = |why: &str| {
        let message = format!(
            "{field}: Secret {namespace}/{name} {why}; the operator reads Secrets in {} only \
             (--secret-namespaces; the chart's secretNamespaces)",
            scope.describe()
        );
        Ok(Err((Reason::SecretOutOfScope, message)))
    };
    if !scope.allows(namespace) {
        return out_of_scope("is in a namespace the operator may not read");
    }
    match Api::<Secret>::namespaced(client.clone(), namespace).get_opt(name).await {
        Ok(Some(secret)) => Ok(Ok(secret)),
        Ok(None) => Ok(Err((Reason::CredentialsMissing, format!("{field}: Secret {namespace}/{name} does not exist")))),
        Err(kube::Error::Api(status)) if status.code == 403 => {
            out_of_scope("cannot be read: RBAC refuses the operator (403)")
        }
        Err(e) => Err(e.into()),
    }
}

/// The API key under `key` in a Secret (trimmed), if it holds a non-blank one.
pub fn api_key_in(secret: &Secret, key: &str) -> Option<ApiKey> {
    let value = secret.data.as_ref()?.get(key).map(|v| String::from_utf8_lossy(&v.0).trim().to_string())?;
    (!value.is_empty()).then(|| ApiKey::new(value))
}

async fn catalog(panel: &dyn panel::Panel) -> panel::Result<PanelCatalog> {
    let locations = panel
        .locations()
        .await?
        .into_iter()
        .map(|l| CatalogLocation { id: PanelId::of(&l.id), short: l.short, long: l.long })
        .collect();
    let mut eggs = Vec::new();
    // Pelican has no nests: its client lists its eggs under one nest without an id.
    for nest in panel.nests().await? {
        for egg in panel.eggs(&nest.id).await? {
            let (nest_id, nest_name) = match nest.id.is_empty() {
                true => (None, None),
                false => (Some(PanelId::of(&nest.id)), Some(nest.name.clone())),
            };
            eggs.push(CatalogEgg { nest: nest_id, nest_name, egg: PanelId::of(&egg.id), name: egg.name });
        }
    }
    let mut tags: Vec<String> = match panel.flavor() {
        crate::crd::Flavor::Pelican => panel.nodes().await?.into_iter().flat_map(|n| n.tags).collect(),
        _ => Vec::new(),
    };
    tags.sort();
    tags.dedup();
    Ok(PanelCatalog { locations, tags, eggs })
}

pub async fn reconcile(panel: Arc<GamePanel>, ctx: Arc<Context>) -> Result<Outcome> {
    let span = tracing::info_span!("reconcile", kind = "GamePanel", name = %panel.name_any());
    apply(panel, ctx).instrument(span).await
}

/// key (from the Secret) → handle (client and lister, shared limiter) → check (permissions and
/// catalog, at most once per refresh) → status.
async fn apply(panel: Arc<GamePanel>, ctx: Arc<Context>) -> Result<Outcome> {
    ctx.caches.ready().await?;
    let old = panel.status.clone().unwrap_or_default();
    let key = Context::key(panel.as_ref());
    let checked = match read_secrets(&ctx.client, &ctx.settings.secrets, &panel).await? {
        Err(missing) => {
            ctx.registry.remove(&panel.name_any()).await;
            Err((missing, None))
        }
        Ok((api_key, trust)) => {
            let handle = connect(&ctx, &panel, &api_key, trust).await?;
            checked(&handle, old.catalog.as_ref()).await.map_err(|refused| (refused.explain(), Some(refused.label())))
        }
    };
    let (ready, catalog, requeue, failed) = match checked {
        Ok(catalog) => {
            let message = "the API key works, has every permission needed, and the catalog is read";
            let requeue = resync_interval(&panel).max(CATALOG_REFRESH);
            (Want::new(condition::READY, true, Reason::Connected, message), Some(catalog), requeue, None)
        }
        Err(((why, message), label)) => {
            let requeue = if why == Reason::Unreachable { ctx.backoff(&key) } else { Duration::from_secs(60) };
            (Want::new(condition::READY, false, why, message), old.catalog.clone(), requeue, label)
        }
    };
    let generation = panel.metadata.generation;
    let status = GamePanelStatus {
        observed_generation: generation,
        conditions: merge(&old.conditions, vec![ready], generation),
        catalog,
    };
    let api: Api<GamePanel> = Api::all(ctx.client.clone());
    let written = apply_status(&api, panel.as_ref(), panel.status.as_ref(), &status).await?;
    tracing::debug!(
        ready = super::conditions::is_true(&status.conditions, condition::READY),
        status_written = written,
        "reconciled"
    );
    Ok(Outcome { action: Action::requeue(requeue), failed })
}

/// The panel's handle (client, lister), made anew when the flavor, URL, key or budget change; its
/// request budget is the one of its panel URL, shared.
async fn connect(ctx: &Context, panel: &GamePanel, key: &ApiKey, trust: TlsTrust) -> Result<Arc<PanelHandle>> {
    let (name, spec) = (panel.name_any(), &panel.spec);
    let rpm = u32::try_from(spec.requests_per_minute).unwrap_or(1);
    let wisp = spec.wisp_api_version.unwrap_or_default();
    let fingerprint = crate::panel::informer::fingerprint(&[
        &format!("{:?} {wisp:?}", spec.flavor),
        &spec.url,
        key.expose(),
        &rpm.to_string(),
        &String::from_utf8_lossy(trust.ca_pem.as_deref().unwrap_or_default()),
        &trust.system_roots.to_string(),
    ]);
    let limiter = ctx.registry.limiter(&spec.url, &name, rpm).await;
    let handle = ctx.registry.ensure(&name, fingerprint, resync_interval(panel), limiter.clone(), || {
        let mut settings = HttpSettings::new(spec.url.clone(), key.clone(), rpm);
        settings.panel = name.clone();
        settings.limiter = limiter;
        settings.agent = Some(ctx.settings.instance.clone());
        settings.leadership = Some(ctx.leadership.clone());
        settings.trust = trust;
        // A 429 pauses the whole panel in the limiter; the reconcile reports it and is requeued
        // after Retry-After, rather than holding a worker while it waits.
        settings.rate_limit_retries = 0;
        panel::connect_with(spec.flavor, wisp, settings)
    })?;
    Ok(handle)
}

/// The panel's catalog once its key is found good, or why it is not.
async fn checked(handle: &PanelHandle, catalog: Option<&PanelCatalog>) -> std::result::Result<PanelCatalog, Refused> {
    match (handle.listing_error(), catalog) {
        // The resync's listing fails: say so without asking the panel again; the lister tells us
        // when a listing succeeds. (A refusal is looked into: a wrong Wisp key and a missing
        // permission both answer 403. A 429 says the panel is busy, not broken: a key found good
        // keeps its status meanwhile.)
        (Some(e), _) if !matches!(e, PanelError::Forbidden { .. } | PanelError::RateLimited { .. }) => {
            Err(Refused::Panel(e))
        }
        // Found good lately: the status stands (this reconcile may be our own status write).
        (None | Some(PanelError::RateLimited { .. }), Some(catalog)) if handle.checked_within(CATALOG_REFRESH / 2) => {
            Ok(catalog.clone())
        }
        _ => match (check(handle.panel.as_ref()).await, catalog) {
            (Err(Refused::Panel(PanelError::RateLimited { .. })), Some(catalog)) => Ok(catalog.clone()),
            (checked, _) => {
                handle.set_checked(checked.is_ok());
                checked
            }
        },
    }
}

/// Why a panel cannot be used.
enum Refused {
    /// The key lacks these permissions (described).
    Permissions(Vec<String>),
    Panel(PanelError),
}

impl Refused {
    /// For the `reason` label of error metrics.
    fn label(&self) -> &'static str {
        match self {
            Refused::Permissions(_) => "forbidden",
            Refused::Panel(e) => e.label(),
        }
    }

    /// The `Ready` reason and message.
    fn explain(&self) -> (Reason, String) {
        match self {
            // Not one read allowed: the key is wrong (Wisp answers a wrong key with 403), or its
            // user is no administrator, or it has no permission at all.
            Refused::Permissions(missing)
                if REQUIRED_READS.iter().all(|r| missing.iter().any(|m| m.starts_with(r))) =>
            {
                (
                    Reason::CredentialsRejected,
                    format!(
                        "the panel refused the API key on every resource ({}): a wrong key, a key of a user who is not an administrator, or a key without permissions",
                        missing.join(", ")
                    ),
                )
            }
            Refused::Permissions(missing) => (
                Reason::InsufficientPermissions,
                format!(
                    "the API key lacks {}: give it read and write on servers and users, and read on allocations, locations, nests and eggs",
                    missing.join(", ")
                ),
            ),
            Refused::Panel(e) => {
                let message = match matches!(e, PanelError::NotAPanel { .. }) {
                    true => format!("spec.url {e}"),
                    false => e.to_string(),
                };
                (super::panel_errors::meaning(e).panel, message)
            }
        }
    }
}

/// The reads a key needs; when the panel refuses all of them, the key itself is refused.
const REQUIRED_READS: [&str; 4] = ["r_locations", "r_users", "r_nests", "r_servers"];

/// Checks the key's permissions, then reads the catalog.
async fn check(panel: &dyn panel::Panel) -> std::result::Result<PanelCatalog, Refused> {
    let missing = panel.missing_permissions().await.map_err(Refused::Panel)?;
    if !missing.is_empty() {
        return Err(Refused::Permissions(missing));
    }
    catalog(panel).await.map_err(Refused::Panel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_scope_is_a_list_of_namespaces_or_every_one() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let scope = SecretScope::parse(&list(&["ops", " games ", ""]));
        assert_eq!(scope, SecretScope::Namespaces(list(&["ops", "games"])));
        assert!(scope.allows("ops") && scope.allows("games") && !scope.allows("default"));
        assert_eq!(scope.describe(), "ops, games");
        assert_eq!(SecretScope::parse(&list(&["ops", "*"])), SecretScope::All);
        assert!(SecretScope::All.allows("anything"));
        assert!(!SecretScope::parse(&[]).allows("ops"));
    }
}
