//! `GamePanel` (cluster-scoped): a panel, its API and its credentials.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Flavor, PanelId, WispApiVersion};

/// A Pterodactyl, Wisp or Pelican panel and the application API key the operator uses on it. Written by the
/// platform team; tenants never see the key.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "pterobox.io",
    version = "v1alpha1",
    kind = "GamePanel",
    shortname = "gpanel",
    category = "pterobox",
    status = "GamePanelStatus",
    cel,
    printcolumn = r#"{"name":"Flavor","type":"string","jsonPath":".spec.flavor"}"#,
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Message","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    doc = "A Pterodactyl, Wisp or Pelican game panel (cluster-scoped): its URL, flavor and the Secret holding its application API key, which GameBoxes name in spec.panelRef. The operator checks the key's permissions, lists the panel's servers periodically and reports the panel's locations and eggs in status.catalog."
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.wispApiVersion) || self.flavor == 'Wisp'").message(Message::Expression("'wispApiVersion is for Wisp panels only, got flavor ' + self.flavor".into())))]
pub struct GamePanelSpec {
    /// The panel's API: `Pterodactyl` (1.x application API), `Wisp` or `Pelican`.
    pub flavor: Flavor,
    /// Wisp only: the API's media type, `v1` (integer ids, the default) or `v2` (string ids, what
    /// Wisp's own billing module asks for since 2026-06: set it on a new Wisp panel). Boxes on a v2
    /// panel name its nests, eggs and locations by the string ids its `status.catalog` shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wisp_api_version: Option<WispApiVersion>,
    /// Base URL of the panel, e.g. `https://panel.example.com`.
    #[schemars(length(max = 2048))]
    #[x_kube(validation = super::rules::http_url())]
    pub url: String,
    /// The Secret key that holds the panel's application API key.
    pub credentials_secret_ref: SecretKeyRef,
    /// A Secret key holding the PEM certificates of the authorities that may sign the panel's TLS
    /// certificate (a private CA), trusted besides the compiled-in web roots; read from the same
    /// namespaces as the credentials. Without it, a panel behind a private CA is `Unreachable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<CaSecretRef>,
    /// Also trust the roots of the operator's system (its image's trust store, or the files that
    /// `SSL_CERT_FILE`/`SSL_CERT_DIR` name). Default: the compiled-in web roots only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trust_system_roots: bool,
    /// The operator's share of the panel's rate limit: at most this many requests in each of the
    /// panel's one-minute windows, never more than the panel says remains in it (per rolling minute
    /// where the panel does not say). What it leaves of the panel's limit (Pterodactyl: 240) is for
    /// the admin's other integrations.
    #[serde(default = "default_requests_per_minute")]
    #[schemars(range(min = 1, max = 100_000))]
    pub requests_per_minute: i64,
    /// How often the operator re-reads the panel to detect drift (a Go duration, at least `10s`).
    /// A re-read that falls due while requests wait for the panel's request budget (a mass apply)
    /// waits until none do, for an interval and at least five minutes.
    #[serde(default = "default_resync_interval")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = super::rules::resync_duration())]
    pub resync_interval: String,
    /// Namespaces whose GameBoxes may use this panel; empty means every namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1024), inner(length(max = 63)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub allowed_namespaces: Vec<String>,
}

fn default_requests_per_minute() -> i64 {
    200
}

fn default_resync_interval() -> String {
    "5m".to_string()
}

/// A key of a Secret in a given namespace.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Namespace of the Secret: the operator's, or one it may read Secrets in (`--secret-namespaces`,
    /// the chart's `secretNamespaces`); elsewhere the GamePanel is `Ready=False SecretOutOfScope`.
    #[schemars(length(max = 63))]
    #[x_kube(validation = super::rules::dns_label())]
    pub namespace: String,
    /// Name of the Secret.
    #[schemars(length(max = 253))]
    #[x_kube(validation = super::rules::non_empty())]
    pub name: String,
    /// Key inside the Secret's data.
    #[serde(default = "default_key")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = super::rules::non_empty())]
    pub key: String,
}

fn default_key() -> String {
    "apiKey".to_string()
}

/// A key of a Secret holding PEM certificates.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CaSecretRef {
    /// Namespace of the Secret: the operator's, or one it may read Secrets in (as for the
    /// credentials).
    #[schemars(length(max = 63))]
    #[x_kube(validation = super::rules::dns_label())]
    pub namespace: String,
    /// Name of the Secret.
    #[schemars(length(max = 253))]
    #[x_kube(validation = super::rules::non_empty())]
    pub name: String,
    /// Key inside the Secret's data (one or more PEM certificates).
    #[serde(default = "default_ca_key")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = super::rules::non_empty())]
    pub key: String,
}

fn default_ca_key() -> String {
    "ca.crt".to_string()
}

/// What the operator observed of the panel.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GamePanelStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: the credentials work and the catalog was read (reasons when False:
    /// CredentialsMissing, SecretOutOfScope, CABundleInvalid, CredentialsRejected,
    /// InsufficientPermissions, NotAPanel, Unreachable).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// Locations and eggs read from the panel: what a platform engineer needs to write a GameBox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<PanelCatalog>,
}

/// Locations and eggs offered by a panel.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PanelCatalog {
    /// Panel locations (use their ids in `GameBox.spec.locations`); none on Pelican.
    #[serde(default)]
    pub locations: Vec<CatalogLocation>,
    /// Pelican: the tags of the panel's nodes (use them in `GameBox.spec.tags`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Eggs by nest (use nest and egg ids in `GameBox.spec.eggs`).
    #[serde(default)]
    pub eggs: Vec<CatalogEgg>,
}

/// A panel location.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogLocation {
    /// Location id.
    #[schemars(schema_with = "super::common::reported_panel_id_schema")]
    pub id: PanelId,
    /// Short code, e.g. `fr-par`.
    pub short: String,
    /// Long description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long: Option<String>,
}

/// A panel egg.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CatalogEgg {
    /// Nest id (none on Pelican).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::common::reported_panel_id_schema")]
    pub nest: Option<PanelId>,
    /// Nest name (none on Pelican).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nest_name: Option<String>,
    /// Egg id.
    #[schemars(schema_with = "super::common::reported_panel_id_schema")]
    pub egg: PanelId,
    /// Egg name.
    pub name: String,
}
