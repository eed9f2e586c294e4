//! The panel as the operator sees it, the same for both flavors. Ids are opaque strings: Wisp's v2
//! API uses prefixed ULIDs where Pterodactyl uses integers.

use std::collections::BTreeMap;

/// A string as the panel stores it: every request string is trimmed before validation and storage
/// (panel `app/Http/Kernel.php`: global `TrimStrings`, which trims Unicode whitespace and the
/// zero-width characters U+FEFF, U+200B and U+200E, as Laravel 11's `Str::trim`), and an empty one
/// becomes null (`ConvertEmptyStringsToNull`), which the panel shows back as `""` or null. Compare
/// what the operator wants with what the panel has only in this form.
pub fn as_stored(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_whitespace() || matches!(c, '\u{FEFF}' | '\u{200B}' | '\u{200E}'))
}

/// A panel user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelUser {
    pub id: String,
    pub external_id: Option<String>,
    pub email: String,
    /// Pterodactyl only (Wisp users have no username).
    pub username: Option<String>,
    pub first_name: String,
    pub last_name: String,
}

/// A user to create. `username` is used on Pterodactyl (derived from the e-mail when absent) and
/// never sent to Wisp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub email: String,
    pub username: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub external_id: String,
}

/// A panel location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub id: String,
    pub short: String,
    pub long: Option<String>,
}

/// A nest (a family of eggs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nest {
    pub id: String,
    pub name: String,
}

/// An egg: how to install and start one game.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Egg {
    pub id: String,
    pub nest: String,
    pub name: String,
    /// Docker images, the default first.
    pub docker_images: Vec<String>,
    pub startup: String,
    /// Empty when read without variables.
    pub variables: Vec<EggVariable>,
}

/// A variable of an egg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EggVariable {
    pub name: String,
    pub env_variable: String,
    pub default_value: String,
    /// Laravel validation rules, e.g. `required|string|max:20`.
    pub rules: String,
}

impl Egg {
    /// Every variable of the egg: its default, overridden by `environment`. The panels do not
    /// apply defaults themselves, and Pterodactyl blanks every variable a startup update omits.
    pub fn environment(&self, environment: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        self.variables
            .iter()
            .map(|v| {
                let value = environment.get(&v.env_variable).cloned().unwrap_or_else(|| v.default_value.clone());
                (v.env_variable.clone(), value)
            })
            .collect()
    }
}

/// Where a server is in its install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallState {
    Installing,
    Installed,
    Failed,
}

/// Resource limits in panel units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory_mib: u64,
    pub swap_mib: u64,
    pub disk_mib: u64,
    pub io: u64,
    pub cpu_percent: u64,
}

impl std::fmt::Display for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "memory={}Mi disk={}Mi cpu={}%", self.memory_mib, self.disk_mib, self.cpu_percent)
    }
}

/// Feature limits. `None` means unlimited on the panel; the operator always sets them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeatureLimits {
    pub databases: Option<u64>,
    pub allocations: Option<u64>,
    pub backups: Option<u64>,
}

/// A network allocation (ip:port) of a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    pub id: Text,
    pub ip: Text,
    pub alias: Option<Text>,
    pub port: u16,
}

/// Short text (panel ids, ports' addresses) held inline, without an allocation of its own: a
/// snapshot holds several per server.
pub type Text = compact_str::CompactString;

pub use crate::digest::Digest;

/// A panel server's environment as the operator compares it: each variable's name and value
/// hashed. The operator only ever asks whether a variable has a given value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variables(Vec<(Digest, Digest)>);

impl Variables {
    /// Whether variable `name` has `value`.
    pub fn has(&self, name: &str, value: &str) -> bool {
        let name = Digest::of(name);
        self.0.binary_search_by_key(&name, |(n, _)| *n).is_ok_and(|i| self.0[i].1 == Digest::of(value))
    }

    /// Sets variable `name` to `value`.
    pub fn set(&mut self, name: &str, value: &str) {
        let (name, value) = (Digest::of(name), Digest::of(value));
        match self.0.binary_search_by_key(&name, |(n, _)| *n) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (name, value)),
        }
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Variables {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut variables = Variables::default();
        for (name, value) in iter {
            variables.set(name.as_ref(), value.as_ref());
        }
        variables.0.shrink_to_fit();
        variables
    }
}

/// A server's UUID and external id, as 16 bytes when they are UUIDs (see [`Uid`]).
pub use crate::crd::Uid;

/// A server on the panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelServer {
    pub id: Text,
    pub external_id: Option<Uid>,
    pub uuid: Uid,
    pub identifier: Text,
    pub name: Digest,
    pub description: Digest,
    pub suspended: bool,
    pub install: InstallState,
    pub limits: Limits,
    pub features: FeatureLimits,
    pub user: Text,
    pub node: Text,
    /// Id of the primary allocation.
    pub allocation: Text,
    pub nest: Text,
    pub egg: Text,
    pub startup: Digest,
    pub image: Digest,
    pub environment: Variables,
    /// The server's allocations when the panel included them (reads and lists do; the responses
    /// of creates and updates do not).
    pub allocations: Vec<Allocation>,
    /// Settings no spec owns, as the panel shows them: a build sends them back unchanged.
    pub switches: Switches,
}

/// A server's settings that PteroBox does not own (a GameServer has no field for them), as read
/// from the panel; `None` when the panel did not show one. An adopted server keeps what it had.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Switches {
    /// The OOM killer is off (`oom_disabled`: Pterodactyl `limits.oom_disabled`, Wisp top level).
    pub oom_disabled: Option<bool>,
    /// Wisp's per-server outgoing IP (`force_outgoing_ip`); Pterodactyl has it per egg only.
    pub force_outgoing_ip: Option<bool>,
}

impl PanelServer {
    /// The primary allocation, when known.
    pub fn primary(&self) -> Option<&Allocation> {
        self.allocations.iter().find(|a| a.id == self.allocation)
    }
}

/// The text of a panel server that [`PanelServer`] keeps only as digests: what `pterobox import`
/// writes into a GameServer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerText {
    pub name: String,
    pub description: String,
    pub startup: String,
    pub image: String,
    /// Every key of the panel's `container.environment`, egg variables and the panel's own.
    pub environment: BTreeMap<String, String>,
}

/// A game node: where a server runs, the location it belongs to, and its room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    pub name: String,
    /// Its location (Pterodactyl, Wisp); empty on Pelican.
    pub location: String,
    /// Its tags (Pelican); empty elsewhere.
    pub tags: Vec<String>,
    /// Whether the panel's `deploy` places servers on it (the operator's own placement follows).
    pub public: bool,
    /// `None` when the panel does not list the node's capacity.
    pub room: Option<NodeRoom>,
}

/// What a node holds and may hold, as the panel's node listing says: its memory and disk (MiB),
/// their overallocation (percent) and the sums of its servers' limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeRoom {
    pub memory_mib: u64,
    pub memory_overallocate: i64,
    pub disk_mib: u64,
    pub disk_overallocate: i64,
    /// `allocated_resources`: the sums of `limits.memory` and `limits.disk` of the node's servers
    /// (an unlimited 0 counts 0); `None` when the panel does not list them.
    pub allocated: Option<Allocated>,
}

/// The sums of the limits of a node's servers, MiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allocated {
    pub memory_mib: u64,
    pub disk_mib: u64,
}

impl NodeRoom {
    /// What the node may hold of one resource: the panel's deploy rule, `capacity × (1 +
    /// overallocate / 100)`, with the overallocation taken literally as the panel does (`-1`, which
    /// its admin UI calls "no check", gives 99 %).
    fn cap(capacity: u64, overallocate: i64) -> u64 {
        let percent = (100 + overallocate).max(0) as u128;
        (capacity as u128 * percent / 100).min(u64::MAX as u128) as u64
    }

    /// Whether a server on this node holding `before` fits once it holds `after`, the node's other
    /// servers holding `allocated` (which counts `before`). A resource that does not grow always
    /// fits: a node already over its room is not made worse by a shrink. The refusal names the
    /// resource and the figures.
    pub fn fits(&self, allocated: Allocated, before: &Limits, after: &Limits) -> Result<(), String> {
        let check = |what: &str, used: u64, before: u64, after: u64, capacity: u64, over: i64| {
            if after <= before {
                return Ok(());
            }
            let cap = Self::cap(capacity, over);
            let needed = used.saturating_sub(before).saturating_add(after);
            match needed <= cap {
                true => Ok(()),
                false => Err(format!(
                    "{what} {needed}Mi would be allocated (this server {before}Mi → {after}Mi), the node holds \
                     {cap}Mi ({capacity}Mi with {over}% overallocation)"
                )),
            }
        };
        check(
            "memory",
            allocated.memory_mib,
            before.memory_mib,
            after.memory_mib,
            self.memory_mib,
            self.memory_overallocate,
        )?;
        check("disk", allocated.disk_mib, before.disk_mib, after.disk_mib, self.disk_mib, self.disk_overallocate)
    }
}

/// A server to create, with automatic placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewServer {
    pub name: String,
    pub description: String,
    pub external_id: String,
    pub user: String,
    pub nest: String,
    pub egg: String,
    pub image: String,
    pub startup: String,
    /// Every egg variable (defaults filled in).
    pub environment: BTreeMap<String, String>,
    pub limits: Limits,
    pub features: FeatureLimits,
    pub locations: Vec<String>,
    /// Pelican's node tags (instead of locations).
    pub tags: Vec<String>,
    /// `A-B`, or any free port when `None`.
    pub port_range: Option<String>,
}

impl Node {
    /// Whether a box placing servers on `locations` or node `tags` may use this node.
    pub fn serves(&self, locations: &[String], tags: &[String]) -> bool {
        locations.contains(&self.location) || self.tags.iter().any(|t| tags.contains(t))
    }
}

/// Where a server is placed by hand rather than by the panel's `deploy`: its primary allocation
/// and the others, all free and on one node (the panel's create then checks no node room).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub default: String,
    pub additional: Vec<String>,
}

/// A build update. The primary allocation is resent as it is, and so are the switches read (a
/// dialect whose panel keeps an omitted one leaves them out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    pub allocation: String,
    pub limits: Limits,
    pub features: FeatureLimits,
    pub switches: Switches,
}

/// A details update: all four fields are replaced (an omitted external id would be cleared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details {
    pub name: String,
    pub description: String,
    pub user: String,
    pub external_id: String,
}

/// A startup update: every variable is sent (omitted ones would be blanked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Startup {
    pub startup: String,
    pub image: String,
    pub egg: String,
    pub environment: BTreeMap<String, String>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: u32,
    pub total_pages: u32,
    pub total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn variables_answer_as_the_map_they_come_from(
            map in proptest::collection::btree_map("[A-Z_]{1,8}", "[a-z0-9.]{0,6}", 0..12),
            name in "[A-Z_]{1,8}",
            value in "[a-z0-9.]{0,6}",
        ) {
            let variables: Variables = map.iter().collect();
            for (k, v) in &map {
                prop_assert!(variables.has(k, v));
                let other = format!("{v}x");
                prop_assert!(!variables.has(k, &other));
            }
            prop_assert_eq!(variables.has(&name, &value), map.get(&name) == Some(&value));
            let mut changed = variables.clone();
            changed.set(&name, &value);
            prop_assert!(changed.has(&name, &value));
            prop_assert_eq!(changed == variables, map.get(&name) == Some(&value));
        }
    }

    fn limits(memory_mib: u64, disk_mib: u64) -> Limits {
        Limits { memory_mib, disk_mib, ..Limits::default() }
    }

    #[test]
    fn a_growth_fits_the_node_as_the_panels_deploy_rule_counts_it() {
        let room = NodeRoom {
            memory_mib: 1000,
            memory_overallocate: 20,
            disk_mib: 5000,
            disk_overallocate: 0,
            allocated: None,
        };
        let used = Allocated { memory_mib: 1000, disk_mib: 4000 };
        // 1000 + 20 % = 1200: growing a 500 Mi server by 200 fits, by 201 does not.
        assert_eq!(room.fits(used, &limits(500, 100), &limits(700, 100)), Ok(()));
        let refused = room.fits(used, &limits(500, 100), &limits(701, 100)).expect_err("over");
        assert!(
            refused.contains("memory 1201Mi") && refused.contains("1200Mi (1000Mi with 20% overallocation)"),
            "{refused}"
        );
        let refused = room.fits(used, &limits(500, 100), &limits(500, 1101)).expect_err("disk over");
        assert!(refused.starts_with("disk 5001Mi"), "{refused}");
        // A node already over its room: a shrink, or a size kept, is never refused.
        let full = Allocated { memory_mib: 5000, disk_mib: 9000 };
        assert_eq!(room.fits(full, &limits(500, 100), &limits(400, 100)), Ok(()));
        // -1 is taken literally, as the panel's deploy does: 99 %.
        let literal = NodeRoom { memory_overallocate: -1, ..room };
        assert!(literal.fits(Allocated::default(), &limits(0, 0), &limits(991, 0)).is_err());
        assert!(literal.fits(Allocated::default(), &limits(0, 0), &limits(990, 0)).is_ok());
    }

    proptest! {
        #[test]
        fn fits_is_exactly_the_room_left(
            capacity in 0u64..100_000, over in -100i64..200, used in 0u64..200_000,
            before in 0u64..50_000, after in 0u64..50_000,
        ) {
            let room = NodeRoom { memory_mib: capacity, memory_overallocate: over, disk_mib: 0, disk_overallocate: 0, allocated: None };
            let used = Allocated { memory_mib: used.max(before), disk_mib: 0 };
            let fits = room.fits(used, &limits(before, 0), &limits(after, 0)).is_ok();
            let cap = capacity as i128 * (100 + over as i128).max(0) / 100;
            let needed = used.memory_mib as i128 - before as i128 + after as i128;
            prop_assert_eq!(fits, after <= before || needed <= cap);
        }
    }
}
