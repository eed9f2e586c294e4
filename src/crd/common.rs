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

/// An identifier that is a UUID almost always (a Kubernetes UID, a panel server's UUID, the external
/// id PteroBox gives a panel server): its 16 bytes when the text is a UUID in the usual lower-case
/// hyphenated form, else the text as it came. Reads, writes, compares and orders as its text. The
/// operator holds one or more a server (a box's ledger, the panel snapshot's key and server), where
/// a `String` was an allocation of 48 bytes each.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Uid(UidRepr);

/// Either form; one text has one form only (`From`), so that the derived equality is the text's.
#[derive(Clone, PartialEq, Eq, Hash)]
enum UidRepr {
    Uuid(uuid::Uuid),
    Text(Box<str>),
}

impl Uid {
    /// Calls `f` with the text, without an allocation.
    pub fn with_text<T>(&self, f: impl FnOnce(&str) -> T) -> T {
        match &self.0 {
            UidRepr::Uuid(u) => f(u.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer())),
            UidRepr::Text(t) => f(t),
        }
    }
}

impl From<&str> for Uid {
    fn from(text: &str) -> Self {
        let mut buffer = uuid::Uuid::encode_buffer();
        Self(match uuid::Uuid::try_parse(text) {
            Ok(u) if u.hyphenated().encode_lower(&mut buffer) == text => UidRepr::Uuid(u),
            _ => UidRepr::Text(text.into()),
        })
    }
}

impl Default for Uid {
    fn default() -> Self {
        Self(UidRepr::Text(Box::default()))
    }
}

impl PartialEq<str> for Uid {
    fn eq(&self, text: &str) -> bool {
        self.with_text(|t| t == text)
    }
}

impl PartialEq<String> for Uid {
    fn eq(&self, text: &String) -> bool {
        *self == **text
    }
}

impl Ord for Uid {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.with_text(|a| other.with_text(|b| a.cmp(b)))
    }
}

impl PartialOrd for Uid {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Uid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.with_text(|t| f.write_str(t))
    }
}

impl std::fmt::Debug for Uid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.with_text(|t| write!(f, "{t:?}"))
    }
}

impl Serialize for Uid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.with_text(|t| serializer.serialize_str(t))
    }
}

impl<'de> Deserialize<'de> for Uid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Uid;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Uid, E> {
                Ok(Uid::from(text))
            }
        }
        deserializer.deserialize_str(Text)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uid_reads_back_compares_and_orders_as_its_text() {
        let texts = [
            "9c0e2a4b-6d1f-4e3a-8b2c-5f7a1d9e0c33",
            "9C0E2A4B-6D1F-4E3A-8B2C-5F7A1D9E0C33",
            "9c0e2a4b6d1f4e3a8b2c5f7a1d9e0c33",
            "{9c0e2a4b-6d1f-4e3a-8b2c-5f7a1d9e0c33}",
            "9c0e2a4b-6d1f-4e3a-8b2c-5f7a1d9e0c34",
            "uid-1",
            "",
        ];
        for text in texts {
            let uid = Uid::from(text);
            assert_eq!(uid.to_string(), text);
            let owned = text.to_string();
            assert!(uid == *text && uid == owned, "{text:?} compares equal to its text");
            let json = serde_json::to_string(&uid).expect("json");
            assert_eq!(json, serde_json::to_string(text).expect("json"));
            assert_eq!(serde_json::from_str::<Uid>(&json).expect("reads back"), uid);
            for other in texts {
                let other_uid = Uid::from(other);
                assert_eq!(uid.cmp(&other_uid), text.cmp(other), "{text:?} against {other:?}");
                assert_eq!(uid == other_uid, text == other, "{text:?} against {other:?}");
            }
        }
        assert!(matches!(Uid::from(texts[0]).0, UidRepr::Uuid(_)), "the usual form is held as 16 bytes");
        assert!(matches!(Uid::from(texts[1]).0, UidRepr::Text(_)), "another form as its text");
        assert_eq!(std::mem::size_of::<Option<Uid>>(), 24);
    }
}
