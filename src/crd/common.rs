//! Types shared by more than one kind.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which panel API a GamePanel speaks.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Flavor {
    /// Pterodactyl 1.x application API (`/api/application`).
    #[default]
    Pterodactyl,
    /// Wisp application API (`/api/application`, `application/vnd.wisp.v1+json` or `…v2+json`).
    Wisp,
    /// Pelican, the maintained fork of Pterodactyl (`/api/application`): no nests and no
    /// locations; boxes place servers by node tags and name eggs by id alone.
    Pelican,
}

// Which media type of Wisp's application API a GamePanel asks for. (A plain comment, as for
// `DeletionPolicy`: the field's own description must reach the CRD.)
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum WispApiVersion {
    /// `application/vnd.wisp.v1+json`: integer ids (the legacy form every Wisp panel serves).
    #[default]
    #[serde(rename = "v1")]
    V1,
    /// `application/vnd.wisp.v2+json`: ids are prefixed ULID strings (`user_01…`); what Wisp's own
    /// billing module asks for since June 2026.
    #[serde(rename = "v2")]
    V2,
}

// What deleting a GameServer does to its panel server. (A plain comment: a doc comment here would
// replace the description of every optional field of this type in the CRD, e.g. a GameServer's
// `deletionPolicy`, which overrides its box's.)
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete the panel server (its files and databases are gone).
    #[default]
    Delete,
    /// Leave the panel server running, no longer managed.
    Orphan,
}

/// A panel's id of a nest, an egg or a location: an integer (Pterodactyl, Wisp's v1 media type) or a
/// string (Wisp's v2 media type: a type prefix and a ULID, `egg_01kt…`). Written as the panel shows
/// it; `"5"` and `5` are the same id.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(untagged)]
pub enum PanelId {
    Int(i64),
    Text(String),
}

impl PartialEq for PanelId {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for PanelId {}

impl std::hash::Hash for PanelId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialOrd for PanelId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PanelId {
    /// Integers in their order, before strings.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let rank = |id: &PanelId| (!id.is_numeric(), id.key().parse::<i64>().unwrap_or(i64::MAX), id.key());
        rank(self).cmp(&rank(other))
    }
}

impl PanelId {
    /// Whether a panel of `flavor` (Wisp spoken to with `wisp`) can know this id: only Wisp's v2
    /// media type has string ids.
    pub fn known_to(&self, flavor: Flavor, wisp: WispApiVersion) -> bool {
        self.is_numeric() || (flavor == Flavor::Wisp && wisp == WispApiVersion::V2)
    }

    /// The id as the panel's paths and the operator's maps use it: digits, or the string.
    pub fn key(&self) -> String {
        match self {
            PanelId::Int(n) => n.to_string(),
            PanelId::Text(s) => s.trim().to_string(),
        }
    }

    /// The id of `key` as a manifest writes it: an integer when it is all digits.
    pub fn of(key: &str) -> PanelId {
        match key.parse::<i64>() {
            Ok(n) if key.bytes().all(|b| b.is_ascii_digit()) => PanelId::Int(n),
            _ => PanelId::Text(key.to_string()),
        }
    }

    /// Whether it is an integer id (in either form): what Pterodactyl and Wisp's v1 know.
    pub fn is_numeric(&self) -> bool {
        let key = self.key();
        !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit())
    }
}

impl std::fmt::Display for PanelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key())
    }
}

impl Default for PanelId {
    fn default() -> Self {
        PanelId::Int(0)
    }
}

impl From<&str> for PanelId {
    fn from(key: &str) -> Self {
        PanelId::of(key)
    }
}

impl From<i64> for PanelId {
    fn from(n: i64) -> Self {
        PanelId::Int(n)
    }
}

impl JsonSchema for PanelId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PanelId".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // maxLength bounds the CEL cost estimate of `string(self)` in the rule.
        let rule = super::rules::panel_id();
        schemars::json_schema!({
            "x-kubernetes-int-or-string": true,
            "maxLength": 64,
            "x-kubernetes-validations": [rule],
        })
    }
}

/// A panel id as the panel reported it (a GamePanel's catalog): int or string, not checked.
pub(crate) fn reported_panel_id_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "x-kubernetes-int-or-string": true, "maxLength": 64 })
}

/// An int-or-string quantity (`4Gi`, `1500m`, `2`), shown without the long upstream description.
pub(crate) fn quantity_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    // maxLength bounds the CEL cost estimate of `string(self)` in the quantity rules.
    schemars::json_schema!({ "x-kubernetes-int-or-string": true, "maxLength": 64 })
}

/// Resources held by one server: what the box has granted it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    /// Memory (panel MiB, rounded up).
    #[schemars(schema_with = "quantity_schema")]
    pub memory: ShortQuantity,
    /// Disk (panel MiB, rounded up).
    #[schemars(schema_with = "quantity_schema")]
    pub disk: ShortQuantity,
    /// CPU in cores (panel percent, rounded up).
    #[schemars(schema_with = "quantity_schema")]
    pub cpu: ShortQuantity,
    /// Databases.
    pub databases: i64,
    /// Network ports (allocations), the primary included.
    pub allocations: i64,
    /// Backups.
    pub backups: i64,
}

/// A quantity as a reservation writes it (`2Gi`, `1500m`): its text held inline, without an
/// allocation of its own, up to 24 bytes. A box's ledger holds three a server.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct ShortQuantity(pub compact_str::CompactString);

/// Totals of a box: its budget or what its admitted servers use.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceTotals {
    /// Memory.
    #[schemars(schema_with = "quantity_schema")]
    pub memory: Quantity,
    /// Disk.
    #[schemars(schema_with = "quantity_schema")]
    pub disk: Quantity,
    /// CPU in cores.
    #[schemars(schema_with = "quantity_schema")]
    pub cpu: Quantity,
    /// Servers.
    pub servers: i64,
    /// Databases.
    pub databases: i64,
    /// Network ports (allocations).
    pub allocations: i64,
    /// Backups.
    pub backups: i64,
}
