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
}

/// Which media type of Wisp's application API a GamePanel asks for.
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

/// What deleting a GameServer does to its panel server.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete the panel server (its files and databases are gone).
    #[default]
    Delete,
    /// Leave the panel server running, no longer managed.
    Orphan,
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
    pub memory: Quantity,
    /// Disk (panel MiB, rounded up).
    #[schemars(schema_with = "quantity_schema")]
    pub disk: Quantity,
    /// CPU in cores (panel percent, rounded up).
    #[schemars(schema_with = "quantity_schema")]
    pub cpu: Quantity,
    /// Databases.
    pub databases: i64,
    /// Network ports (allocations), the primary included.
    pub allocations: i64,
    /// Backups.
    pub backups: i64,
}

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
