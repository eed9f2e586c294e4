//! `GameBox` (namespaced): a budget of panel resources, the games on offer, placement and owner.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::quantity_schema;
use super::{DeletionPolicy, PanelId, Reservation, ResourceTotals};

/// The most servers one box may hold. Its ledger (`status.servers`) lists each of them and up to
/// [`MAX_REJECTED_IN_LEDGER`] rejected ones; at this size a box with the longest names and messages
/// measures about 0.9 MB as stored (managed fields included: `tests/crds.rs` prints it), under
/// etcd's 1.5 MiB per object.
pub const MAX_SERVERS_PER_BOX: i64 = 1000;

/// How many rejected servers the ledger lists (each rejected server's own status has its verdict).
pub const MAX_REJECTED_IN_LEDGER: usize = 20;

/// The most entries `status.servers` holds: every admitted server and the listed rejected ones.
pub const MAX_LEDGER_ENTRIES: usize = MAX_SERVERS_PER_BOX as usize + MAX_REJECTED_IN_LEDGER;

/// A box of panel resources sold to one customer: servers declared in the same namespace
/// (`GameServer.spec.box`) are admitted only while they fit its budget.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "pterobox.io",
    version = "v1alpha1",
    kind = "GameBox",
    namespaced,
    shortname = "gbox",
    category = "pterobox",
    status = "GameBoxStatus",
    cel,
    printcolumn = r#"{"name":"Servers","type":"string","jsonPath":".status.summary.servers"}"#,
    printcolumn = r#"{"name":"Memory","type":"string","jsonPath":".status.summary.memory"}"#,
    printcolumn = r#"{"name":"CPU","type":"string","jsonPath":".status.summary.cpu"}"#,
    printcolumn = r#"{"name":"Disk","type":"string","jsonPath":".status.summary.disk"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Panel","type":"string","priority":1,"jsonPath":".spec.panelRef"}"#,
    printcolumn = r#"{"name":"Over Budget","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"OverBudget\")].status"}"#,
    printcolumn = r#"{"name":"Message","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    doc = "A box of game-server resources sold to one customer on a GamePanel: a budget (memory, disk, CPU, servers, databases, allocations, backups), the games (eggs) on offer, placement and owner. GameServers of the same namespace that name it are admitted only while they fit; status.servers is the admission ledger."
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.locations) && size(self.locations) > 0) != (has(self.tags) && size(self.tags) > 0)").message("give spec.locations (Pterodactyl, Wisp) or spec.tags (Pelican node tags): one of the two").field_path(".locations"))]
#[x_kube(validation = Rule::new("(has(self.tags) && size(self.tags) > 0) || self.eggs.all(e, has(e.nest))").message("each egg needs its nest on Pterodactyl and Wisp (a box placed by spec.locations); only Pelican (spec.tags) names eggs without one").field_path(".eggs"))]
pub struct GameBoxSpec {
    /// Name of the cluster-scoped GamePanel whose servers this box sells. Immutable: the box's
    /// owner and servers live on that panel. To move a box, create a box on the other panel and its
    /// servers there, then delete the old ones (their `deletionPolicy` says whether their panel
    /// servers go with them).
    #[schemars(length(max = 253))]
    #[x_kube(
        validation = super::rules::non_empty(),
        validation = super::rules::immutable_because(
            "spec.panelRef",
            "the owner and servers of the box live on that panel; to move them, create a box on the other panel and its servers there, then delete these"
        )
    )]
    pub panel_ref: String,
    /// The customer who owns every server of the box on the panel (`panelUserId` if given, else found
    /// by exact e-mail, else created).
    pub owner: Owner,
    /// Product name (`%product_name%` in templates; empty when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 191))]
    pub product_name: Option<String>,
    /// Service id (`%service_id%`); defaults to the box's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 191))]
    pub service_id: Option<String>,
    /// When set, every server of the box is suspended from this instant (`%service_expiration%`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    /// Suspends every server of the box on the panel.
    #[serde(default)]
    pub suspended: bool,
    /// Totals for the whole box.
    pub budget: Budget,
    /// Limits applied to every server of the box.
    #[serde(default)]
    pub per_server: PerServer,
    /// The games offered; a server picks one by name.
    #[x_kube(validation = Rule::new("size(self) >= 1").message("at least one egg must be offered"))]
    #[x_kube(validation = Rule::new("self.all(e, self.exists_one(f, f.name == e.name))").message("egg names must be unique"))]
    #[schemars(length(max = 64))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub eggs: Vec<EggOffer>,
    /// Pterodactyl and Wisp: panel location ids where servers may be placed (integers, or on a Wisp
    /// panel spoken to in v2 its string ids, `loc_01kt…`). A box gives `locations` or `tags`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub locations: Vec<PanelId>,
    /// Pelican: node tags where servers may be placed (a node carrying any of them; the GamePanel's
    /// `status.catalog.tags` lists the panel's). Pelican has no locations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 191)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub tags: Vec<String>,
    /// Ports for each server's allocations, `A-B` with 1024 <= A <= B <= 65535; any free port when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 11))]
    #[x_kube(validation = super::rules::port_range(), validation = super::rules::port_range_span())]
    pub port_range: Option<String>,
    /// Lets a server grow on its node past the node's room (memory and disk with their
    /// overallocation, as the panel's node listing counts them). By default a resize that does not
    /// fit the node is not sent: the server keeps its size, `Synced=False NodeFull`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_node_overcommit: bool,
    /// Template of the panel name of a server that gives no `displayName` (template variables
    /// allowed); without either, the GameServer's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 191))]
    #[x_kube(validation = super::rules::known_template_variables())]
    pub server_name: Option<String>,
    /// Template of a server's description on the panel (template variables allowed); without it
    /// and a server's own `description`, the description is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    #[x_kube(validation = super::rules::known_template_variables())]
    pub server_description: Option<String>,
    /// What deleting a server does on the panel: `Delete` (default) or `Orphan`.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Panel users (ids) whose servers this box's GameServers may adopt (`spec.adopt`) besides the
    /// owner's own; an adopted server is given to the box's owner. A GameServer never adopts a
    /// server of anyone else: whoever may write GameServers cannot take another customer's server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_-]+$")))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub adopt_from: Vec<String>,
    /// What a tenant who may write GameServers in the namespace may set beyond the egg, its
    /// variables (within the egg's rules) and the resources the budget allows. Safe by default: the
    /// startup command is the egg's (`startup: false`); an image is one of the egg's own
    /// (`image: true`). A server asking for what the box forbids is `Rejected`, naming the field.
    #[serde(default, skip_serializing_if = "TenantMay::is_default")]
    pub tenant_may: TenantMay,
}

/// What the tenant may set on a GameServer of the box.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TenantMay {
    /// `spec.startup`: a command of the tenant's own instead of the egg's. Default `false`: panel
    /// administrators usually keep startup commands to themselves (a command runs anything the
    /// image holds).
    #[serde(default)]
    pub startup: bool,
    /// `spec.image`: another of the egg's own docker images than its first. Default `true`.
    #[serde(default = "yes")]
    pub image: bool,
}

fn yes() -> bool {
    true
}

impl Default for TenantMay {
    fn default() -> Self {
        Self { startup: false, image: true }
    }
}

impl TenantMay {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// The owner of a box's servers on the panel.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    /// E-mail address (the panel user is found by exact match, else created).
    #[schemars(length(max = 191))]
    #[x_kube(validation = super::rules::email())]
    pub email: String,
    /// An existing panel user to use (its id on the panel), instead of finding one by e-mail. Its
    /// e-mail must be `email` (else `Ready=False OwnerRefused` says whose it is): a box never hands
    /// servers to a user it was not told about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9_-]+$')").message(Message::Expression("'must be a panel user id such as 12, got ' + self".into())))]
    pub panel_user_id: Option<String>,
    /// Panel username (Pterodactyl and Pelican; derived from the e-mail when unset). Pelican keeps no
    /// first or last name: they are only used in templates there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 191))]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9][A-Za-z0-9_.-]+[A-Za-z0-9]$')").message(Message::Expression("'must be 3+ letters, digits, _, . or -, starting and ending with a letter or digit, got ' + self".into())))]
    pub username: Option<String>,
    /// First name.
    #[schemars(length(max = 191))]
    #[x_kube(validation = super::rules::non_blank())]
    pub first_name: String,
    /// Last name.
    #[schemars(length(max = 191))]
    #[x_kube(validation = super::rules::non_blank())]
    pub last_name: String,
}

/// The totals of a box.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = super::rules::allocations_given())]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    /// Total memory, e.g. `8Gi`.
    #[schemars(schema_with = "quantity_schema")]
    #[x_kube(validation = super::rules::positive_quantity())]
    pub memory: Quantity,
    /// Total disk, e.g. `100Gi`.
    #[schemars(schema_with = "quantity_schema")]
    #[x_kube(validation = super::rules::positive_quantity())]
    pub disk: Quantity,
    /// Total CPU in cores: `1` is 100 % on the panel, `1500m` is 150 %.
    #[schemars(schema_with = "quantity_schema")]
    #[x_kube(validation = super::rules::positive_quantity())]
    pub cpu: Quantity,
    /// How many servers the box may hold (1 to 1000: the box lists each in its status, which must
    /// stay well under etcd's object size limit).
    #[schemars(range(min = 1, max = MAX_SERVERS_PER_BOX))]
    pub servers: i64,
    /// Total databases.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub databases: i64,
    /// Total network ports (allocations); every server needs at least one (its primary port), so
    /// at least 1 — a box without it would admit no server, and is refused at apply time.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub allocations: i64,
    /// Total backups.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub backups: i64,
}

/// Limits applied to every server of a box.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = super::rules::min_not_above_max("memory"))]
#[x_kube(validation = super::rules::min_not_above_max("disk"))]
#[x_kube(validation = super::rules::min_not_above_max("cpu"))]
pub struct PerServer {
    /// Swap per server; `0` means no swap.
    #[serde(default = "default_swap")]
    #[schemars(schema_with = "quantity_schema")]
    #[x_kube(validation = super::rules::non_negative_quantity())]
    pub swap: Quantity,
    /// Block-IO weight per server, 10..1000.
    #[serde(default = "default_io")]
    #[schemars(range(min = 10, max = 1000))]
    pub io: i64,
    /// The least memory, disk and CPU one server of the box may ask for (as a billing module's
    /// resource pool offers it): a server below it is refused, a resize below it not granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<ServerBound>,
    /// The most memory, disk and CPU one server of the box may ask for: a server above it is
    /// refused, a resize above it not granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<ServerBound>,
}

impl Default for PerServer {
    fn default() -> Self {
        Self { swap: default_swap(), io: default_io(), min: None, max: None }
    }
}

/// A bound on one server's memory, disk and CPU; a resource not given is not bounded.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServerBound {
    /// Memory, e.g. `1Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity_schema")]
    #[x_kube(validation = super::rules::positive_quantity())]
    pub memory: Option<Quantity>,
    /// Disk, e.g. `10Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity_schema")]
    #[x_kube(validation = super::rules::positive_quantity())]
    pub disk: Option<Quantity>,
    /// CPU in cores, e.g. `500m` or `2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity_schema")]
    #[x_kube(validation = super::rules::positive_quantity())]
    pub cpu: Option<Quantity>,
}

fn default_swap() -> Quantity {
    Quantity("0".into())
}

fn default_io() -> i64 {
    500
}

/// A game offered by the box: a panel egg under a name that servers use.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EggOffer {
    /// Name servers use in `spec.egg`.
    #[schemars(length(max = 63))]
    #[x_kube(validation = super::rules::dns_label())]
    pub name: String,
    /// Panel nest id: an integer, or on a Wisp panel spoken to in v2 its string id (`nest_01kt…`).
    /// Pterodactyl and Wisp only: Pelican has no nests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nest: Option<PanelId>,
    /// Panel egg id: an integer, or on a Wisp panel spoken to in v2 its string id (`egg_01kt…`).
    pub egg: PanelId,
}

/// What the box has admitted and what it uses.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GameBoxStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `OverBudget`, `Suspended`, `Expired`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The owner's panel user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<OwnerStatus>,
    /// The budget as enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<ResourceTotals>,
    /// The sum of the admitted servers' reservations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<ResourceTotals>,
    /// Resources whose use has reached the budget (`memory`, `disk`, `cpu`, `servers`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exhausted: Vec<String>,
    /// `used/limit` per resource, for the printer columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// The admission ledger: every admitted server and at most 20 rejected ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_LEDGER_ENTRIES))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub servers: Vec<LedgerEntry>,
}

/// The owner's panel user.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnerStatus {
    /// Panel user id.
    pub panel_user_id: String,
}

/// `used/limit` strings for the printer columns.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// e.g. `3/10`.
    pub servers: String,
    /// e.g. `6Gi/8Gi`.
    pub memory: String,
    /// e.g. `3/5`.
    pub cpu: String,
    /// e.g. `60Gi/100Gi`.
    pub disk: String,
}

/// The verdict of the box on one server.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum LedgerState {
    /// The server holds a reservation.
    Admitted,
    /// The server does not fit.
    Rejected,
}

/// One line of the admission ledger.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEntry {
    /// GameServer name.
    #[schemars(with = "String")]
    pub name: compact_str::CompactString,
    /// GameServer UID (a new object under an old name is a new server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub uid: Option<super::Uid>,
    /// `Admitted` or `Rejected`.
    pub state: LedgerState,
    /// What the server holds (admitted servers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<Reservation>,
    /// Why (e.g. `BudgetExceeded`, `ResizeRejected`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub reason: Option<Box<str>>,
    /// The quota message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub message: Option<Box<str>>,
}
