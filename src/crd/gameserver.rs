//! `GameServer` (namespaced): one server inside a box.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::quantity_schema;
use super::{DeletionPolicy, Reservation};

/// A game server on the panel, carved out of a GameBox of the same namespace.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "pterobox.io",
    version = "v1alpha1",
    kind = "GameServer",
    namespaced,
    shortname = "gsrv",
    category = "pterobox",
    status = "GameServerStatus",
    cel,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.state"}"#,
    printcolumn = r#"{"name":"Box","type":"string","jsonPath":".spec.box"}"#,
    printcolumn = r#"{"name":"Egg","type":"string","jsonPath":".spec.egg"}"#,
    printcolumn = r#"{"name":"Memory","type":"string","jsonPath":".spec.resources.memory"}"#,
    printcolumn = r#"{"name":"Address","type":"string","jsonPath":".status.address"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Panel ID","type":"string","priority":1,"jsonPath":".status.panel.id"}"#,
    printcolumn = r#"{"name":"Message","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    doc = "A game server on a Pterodactyl or Wisp panel, carved out of the budget of a GameBox in the same namespace. The box admits it while it fits; the operator then creates it on the panel (or adopts an existing one, spec.adopt) with the reserved resources, keeps it as specified, and reports it in status."
)]
#[x_kube(validation = super::rules::ports_counted(), validation = super::rules::ports_not_in_environment())]
#[x_kube(validation = Rule::new("has(self.adopt) == has(oldSelf.adopt) && (!has(self.adopt) || self.adopt == oldSelf.adopt)").message(Message::Expression("'spec.adopt is set when the GameServer is created and cannot change: to adopt another panel server, create another GameServer'".into())))]
#[serde(rename_all = "camelCase")]
pub struct GameServerSpec {
    /// Name of the GameBox (same namespace) whose budget this server uses. Immutable.
    #[serde(rename = "box")]
    #[schemars(length(max = 253))]
    #[x_kube(validation = super::rules::non_empty(), validation = super::rules::immutable("spec.box"))]
    pub box_name: String,
    /// Name of one of the box's eggs. Immutable.
    #[schemars(length(max = 63))]
    #[x_kube(validation = super::rules::dns_label(), validation = super::rules::immutable("spec.egg"))]
    pub egg: String,
    /// Name on the panel; default: the box's `serverName` template, else the GameServer's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 191))]
    #[x_kube(validation = super::rules::non_blank())]
    pub display_name: Option<String>,
    /// Description on the panel; default: the box's `serverDescription` template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub description: Option<String>,
    /// What the server asks of its box.
    pub resources: ServerResources,
    /// Egg variables; the egg's defaults fill the rest.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 128))]
    pub environment: BTreeMap<String, String>,
    /// Ports beyond the primary one, each wired into an egg variable: variable → `+N` (the primary
    /// port plus N, on its IP) or `any` (a free port of the box's `portRange`, on the primary's IP),
    /// e.g. `{QUERY_PORT: "+1", RCON_PORT: any}`. The operator places the server where they are
    /// free, writes each port into its variable (restoring it when it is changed on the panel) and
    /// reports them in `status.namedPorts`. `resources.allocations` counts them: at least 1 + their
    /// number. A variable named here is not set in `environment`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "ports_schema")]
    pub ports: BTreeMap<String, String>,
    /// One of the egg's docker images; default: the egg's first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 191))]
    #[x_kube(validation = super::rules::non_blank())]
    pub image: Option<String>,
    /// Startup command; default: the egg's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    #[x_kube(validation = super::rules::non_blank())]
    pub startup: Option<String>,
    /// Suspends the server on the panel.
    #[serde(default)]
    pub suspended: bool,
    /// Overrides the box's `deletionPolicy` for this server: `Delete` or `Orphan`; unset, the box's
    /// applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    /// An existing panel server to take over instead of creating one (set at creation only). Once
    /// the box admits this GameServer, the operator sets that server's external id to this
    /// GameServer's UID, gives it to the box's owner and manages it from then on, resizing it to
    /// `resources`; nothing on the panel changes before admission. `pterobox import` writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<Adopt>,
}

/// The panel server a GameServer takes over: exactly one of `id` and `externalId`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[x_kube(validation = Rule::new("has(self.id) != has(self.externalId)").message(Message::Expression("'give exactly one of id and externalId'".into())))]
#[serde(rename_all = "camelCase")]
pub struct Adopt {
    /// The server's panel id (the number in the admin area's URL; on Wisp's v2 API a prefixed id such as `server_01kt…`, whose prefix is inferred).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9_-]+$')").message(Message::Expression("'must be a panel server id such as 42, got ' + self".into())))]
    pub id: Option<String>,
    /// The server's current external id on the panel (e.g. a billing module's service id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 191))]
    #[x_kube(validation = super::rules::non_blank())]
    pub external_id: Option<String>,
}

impl std::fmt::Display for Adopt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.id, &self.external_id) {
            (Some(id), _) => write!(f, "panel server {id}"),
            (None, Some(external)) => write!(f, "the panel server with external id {external:?}"),
            (None, None) => f.write_str("no panel server"),
        }
    }
}

/// What a server asks of its box.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServerResources {
    /// Memory, e.g. `4Gi`.
    #[schemars(schema_with = "quantity_schema")]
    #[x_kube(validation = super::rules::positive_quantity())]
    pub memory: Quantity,
    /// Disk, e.g. `50Gi`.
    #[schemars(schema_with = "quantity_schema")]
    #[x_kube(validation = super::rules::positive_quantity())]
    pub disk: Quantity,
    /// CPU in cores, e.g. `2` or `1500m`.
    #[schemars(schema_with = "quantity_schema")]
    #[x_kube(validation = super::rules::positive_quantity())]
    pub cpu: Quantity,
    /// Databases.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub databases: i64,
    /// Network ports, the primary one included (at least 1).
    #[serde(default = "default_allocations")]
    #[schemars(range(min = 1))]
    pub allocations: i64,
    /// Backups.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub backups: i64,
}

fn default_allocations() -> i64 {
    1
}

/// `spec.ports`: at most 16, each value `+N` or `any` (the rule on the value names its key).
fn ports_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let value = super::rules::port_want();
    schemars::json_schema!({
        "type": "object",
        "maxProperties": 16,
        "additionalProperties": {
            "type": "string",
            "maxLength": 6,
            "x-kubernetes-validations": [value],
        },
    })
}

/// Where a server is in its life.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ServerState {
    /// Waiting for the box's verdict.
    #[default]
    Pending,
    /// The box refused it (see `message`).
    Rejected,
    /// Being created on the panel.
    Creating,
    /// Created; the panel is installing it.
    Installing,
    /// Installed and matching its spec.
    Ready,
    /// Suspended on the panel.
    Suspended,
    /// The panel refused or failed it (see `message`).
    Failed,
    /// Being removed from the panel.
    Deleting,
}

impl ServerState {
    /// The state as the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Pending => "Pending",
            ServerState::Rejected => "Rejected",
            ServerState::Creating => "Creating",
            ServerState::Installing => "Installing",
            ServerState::Ready => "Ready",
            ServerState::Suspended => "Suspended",
            ServerState::Failed => "Failed",
            ServerState::Deleting => "Deleting",
        }
    }
}

/// What the operator observed of the server.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GameServerStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pending, Rejected, Creating, Installing, Ready, Suspended, Failed or Deleting.
    #[serde(default)]
    pub state: ServerState,
    /// `Admitted`, `Synced`, `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// What the panel server may hold: the box's grant once the panel has applied it, until then
    /// the larger of the grant and what it held before. The box counts this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<Reservation>,
    /// The server on the panel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panel: Option<PanelRef>,
    /// `ip:port` of the primary allocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Every port of the server, primary first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<i64>,
    /// The ports of `spec.ports` by variable, as the panel server's variables hold them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub named_ports: BTreeMap<String, i64>,
    /// A human-readable explanation of the state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Identifiers of a server on the panel.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PanelRef {
    /// Internal id (used in API paths).
    pub id: String,
    /// UUID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Short identifier (used in the panel's web URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    /// External id: the GameServer's UID.
    pub external_id: String,
    /// Node id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The server's page on the panel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}
