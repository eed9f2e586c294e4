//! Named ports (`GameServer.spec.ports`): which allocation each egg variable gets, where a new
//! server is placed so that they are free, and the panel calls that make it so.
//!
//! An offset `+N` is the primary port plus N on the primary's IP; `any` is any port on the
//! primary's IP — one the server holds, else a free one of the box's `portRange`. A server keeps
//! the ports it has: a variable keeps the allocation it names when that still fits.

use std::collections::{BTreeMap, HashSet};

use kube::ResourceExt;
use rand::seq::SliceRandom;

use super::Refusal;
use super::desired::Desired;
use crate::crd::GameBox;
use crate::panel::informer::PanelHandle;
use crate::panel::{Allocation, Limits, PanelError, PanelServer, Placement, Text};

/// What a variable of `spec.ports` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The primary port plus N, on its IP.
    Offset(u16),
    /// Any port on the primary's IP, of the box's `portRange` when a free one is taken.
    Any,
}

impl Want {
    /// `+N` (N from 1) or `any`.
    pub fn parse(value: &str) -> Option<Want> {
        if value == "any" {
            return Some(Want::Any);
        }
        let n: u16 = value.strip_prefix('+')?.parse().ok()?;
        (n > 0).then_some(Want::Offset(n))
    }
}

impl std::fmt::Display for Want {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Want::Offset(n) => write!(f, "+{n}"),
            Want::Any => f.write_str("any"),
        }
    }
}

/// The box's `portRange`, inclusive; every port when it has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub lo: u16,
    pub hi: u16,
}

impl Range {
    /// `A-B`, or every port for `None`.
    pub fn parse(range: Option<&str>) -> Result<Range, String> {
        let Some(range) = range else { return Ok(Range { lo: 1, hi: u16::MAX }) };
        let bounds = range.split_once('-').and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
        match bounds {
            Some((lo, hi)) if lo <= hi => Ok(Range { lo, hi }),
            _ => Err(format!("must be a range A-B, got {range:?}")),
        }
    }

    fn holds(&self, port: u16) -> bool {
        (self.lo..=self.hi).contains(&port)
    }
}

/// `spec.ports` as wants, offsets first: each names one port, `any` takes what is left. Two
/// variables cannot share an offset (each is an allocation of its own).
pub fn wants(ports: &BTreeMap<String, String>) -> Result<Vec<(String, Want)>, String> {
    let mut wants: Vec<(String, Want)> = Vec::with_capacity(ports.len());
    for (var, value) in ports {
        let want = Want::parse(value).ok_or_else(|| {
            format!("spec.ports.{var}: must be +N (the primary port plus N, such as +1) or any, got {value:?}")
        })?;
        if let Some((other, _)) = wants.iter().find(|(_, w)| *w == want && want != Want::Any) {
            return Err(format!(
                "spec.ports.{var}: {value} is {other}'s port already: give each variable its own offset"
            ));
        }
        wants.push((var.clone(), want));
    }
    wants.sort_by_key(|(_, w)| matches!(w, Want::Any));
    Ok(wants)
}

/// Which allocation each variable gets, and which of them the server must be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned {
    pub ports: BTreeMap<String, Allocation>,
    pub add: Vec<Allocation>,
}

/// Assigns each want of a server whose primary allocation is `primary` and that holds `own`: an
/// offset the allocation at its port, `any` the allocation its variable names now (`names`), else
/// one the server holds that no other variable took, else the first of `free` (in the order given)
/// in `range`. Everything is on the primary's IP. `Err` names the variables nothing fits.
pub fn assign(
    primary: &Allocation,
    own: &[Allocation],
    names: impl Fn(&str, u16) -> bool,
    wants: &[(String, Want)],
    free: &[Allocation],
    range: Range,
) -> Result<Assigned, Vec<String>> {
    let mut taken: HashSet<Text> = HashSet::from([primary.id.clone()]);
    let mut assigned = Assigned { ports: BTreeMap::new(), add: Vec::new() };
    let mut unmet = Vec::new();
    let on_ip = |a: &&Allocation| a.ip == primary.ip;
    let mut take = |var: &str, a: &Allocation, owned: bool, taken: &mut HashSet<Text>| {
        taken.insert(a.id.clone());
        if !owned {
            assigned.add.push(a.clone());
        }
        assigned.ports.insert(var.to_string(), a.clone());
    };
    // Offsets, then each `any` the server holds by its variable, then the other `any`s.
    let mut left = Vec::new();
    for (var, want) in wants {
        match want {
            Want::Offset(n) => {
                let port = primary.port.checked_add(*n);
                let at = |a: &&Allocation| Some(a.port) == port && !taken.contains(&a.id);
                let found = match own.iter().filter(on_ip).find(at) {
                    Some(a) => Some((a, true)),
                    None => free.iter().filter(on_ip).filter(|a| range.holds(a.port)).find(at).map(|a| (a, false)),
                };
                match found {
                    Some((a, owned)) => take(var, a, owned, &mut taken),
                    None => unmet.push(var.clone()),
                }
            }
            Want::Any => match own.iter().filter(on_ip).find(|a| !taken.contains(&a.id) && names(var, a.port)) {
                Some(a) => take(var, a, true, &mut taken),
                None => left.push(var),
            },
        }
    }
    for var in left {
        let found = match own.iter().filter(on_ip).find(|a| !taken.contains(&a.id)) {
            Some(a) => Some((a, true)),
            None => {
                free.iter().filter(on_ip).find(|a| range.holds(a.port) && !taken.contains(&a.id)).map(|a| (a, false))
            }
        };
        match found {
            Some((a, owned)) => take(var, a, owned, &mut taken),
            None => unmet.push(var.clone()),
        }
    }
    match unmet.is_empty() {
        true => Ok(assigned),
        false => Err(unmet),
    }
}

/// Where a new server goes among a node's `free` allocations (tried in the order given): the first
/// primary in `range` whose wants all fit beside it.
pub fn place(free: &[Allocation], wants: &[(String, Want)], range: Range) -> Option<(Placement, Assigned)> {
    free.iter().filter(|p| range.holds(p.port)).find_map(|primary| {
        let assigned = assign(primary, &[], |_, _| false, wants, free, range).ok()?;
        let placement = Placement {
            default: primary.id.to_string(),
            additional: assigned.add.iter().map(|a| a.id.to_string()).collect(),
        };
        Some((placement, assigned))
    })
}

/// `status.namedPorts`: each variable of `spec.ports` and the port of the server's allocations its
/// value on the panel names.
pub fn named(ports: &BTreeMap<String, String>, server: &PanelServer) -> BTreeMap<String, i64> {
    ports
        .keys()
        .filter_map(|var| {
            let a = server.allocations.iter().find(|a| server.environment.has(var, &a.port.to_string()))?;
            Some((var.clone(), i64::from(a.port)))
        })
        .collect()
}

/// The wants as the message of a refusal shows them: `QUERY_PORT (+1), RCON_PORT (any)`.
fn listed(wants: &[(String, Want)], only: Option<&[String]>) -> String {
    let shown = wants.iter().filter(|(var, _)| only.is_none_or(|o| o.contains(var)));
    shown.map(|(var, want)| format!("{var} ({want})")).collect::<Vec<_>>().join(", ")
}

/// The assignment as an event shows it: `QUERY_PORT 30101, RCON_PORT 30105`.
pub fn shown(ports: &BTreeMap<String, Allocation>) -> String {
    ports.iter().map(|(var, a)| format!("{var} {}", a.port)).collect::<Vec<_>>().join(", ")
}

/// The desired server with each variable of `ports` set to its port.
pub fn wired(desired: &Desired, ports: &BTreeMap<String, Allocation>) -> Desired {
    let mut wired = desired.clone();
    for (var, a) in ports {
        wired.server.environment.insert(var.clone(), a.port.to_string());
    }
    wired
}

/// The ports of an existing server: what each variable gets, the allocations it lacks given to it
/// from its node's free ones (one request for them, only when it lacks some). The server as the
/// panel answered when it was given some, and the assignment; a refusal names the variables its
/// node has no free port for.
pub(super) async fn settle(
    handle: &PanelHandle,
    current: &PanelServer,
    desired: &Desired,
) -> Result<(Option<PanelServer>, BTreeMap<String, Allocation>), Refusal> {
    let range =
        Range::parse(desired.port_range.as_deref()).map_err(|e| Refusal::Spec(format!("spec.portRange: {e}")))?;
    let Some(primary) = current.primary().cloned() else {
        return Err(Refusal::Ports("the panel server has no primary allocation to place its ports beside".into()));
    };
    let names = |var: &str, port: u16| current.environment.has(var, &port.to_string());
    let own = &current.allocations;
    let assigned = match assign(&primary, own, names, &desired.ports, &[], range) {
        Ok(assigned) => assigned,
        Err(_) => {
            let mut free = handle.panel.free_allocations(&current.node, Some((range.lo, range.hi))).await?;
            free.shuffle(&mut rand::rng());
            match assign(&primary, own, names, &desired.ports, &free, range) {
                Ok(assigned) => assigned,
                Err(unmet) => {
                    return Err(Refusal::Ports(format!(
                        "node {} has no free port on {} for {} (port range {}-{}): the server keeps the ports it \
                         has; free or add allocations on the node",
                        current.node,
                        primary.ip,
                        listed(&desired.ports, Some(&unmet)),
                        range.lo,
                        range.hi
                    )));
                }
            }
        }
    };
    if assigned.add.is_empty() {
        return Ok((None, assigned.ports));
    }
    let add: Vec<String> = assigned.add.iter().map(|a| a.id.to_string()).collect();
    let given = handle.panel.add_allocations(current, &add).await?;
    Ok((Some(given), assigned.ports))
}

/// Creates the server on chosen allocations: on a public node of the box's locations with room
/// for it (the panel checks none on such a create; `allowNodeOvercommit` skips the check), where
/// a free primary port in range has every want free beside it, with each variable set to its
/// port. A create the panel refuses because a chosen allocation was taken meanwhile (a 422 on
/// `allocation.*`) is placed again, twice at most. The outer error is a placement that found no
/// room or could not list; the inner one the create's own answer.
pub(super) async fn create_placed(
    handle: &PanelHandle,
    desired: &Desired,
    gbox: &GameBox,
) -> Result<Result<PanelServer, PanelError>, Refusal> {
    let range =
        Range::parse(desired.port_range.as_deref()).map_err(|e| Refusal::Spec(format!("spec.portRange: {e}")))?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (placement, assigned, node) = placement(handle, desired, gbox, range).await?;
        let server = wired(desired, &assigned.ports).server;
        match handle.panel.create_server_at(&server, &placement).await {
            Err(PanelError::Validation { field, .. }) if field.starts_with("allocation") && attempt < 3 => {
                tracing::info!(%node, %field, "a chosen allocation was taken meanwhile: placing again");
            }
            Ok(created) => {
                handle.grew(&node, &Limits::default(), &desired.limits);
                return Ok(Ok(created));
            }
            Err(e) => return Ok(Err(e)),
        }
    }
}

/// A node and allocations for a new server (see [`create_placed`]), nodes tried in random order.
async fn placement(
    handle: &PanelHandle,
    desired: &Desired,
    gbox: &GameBox,
    range: Range,
) -> Result<(Placement, Assigned, String), Refusal> {
    let mut nodes = handle.nodes().await?;
    nodes.retain(|n| n.public && n.serves(&desired.locations, &desired.tags));
    // Only the ports of the box's range are asked for (a query of every port would be 390 KB).
    let ports = desired.port_range.is_some().then_some((range.lo, range.hi));
    nodes.shuffle(&mut rand::rng());
    let mut why = Vec::new();
    for node in &nodes {
        if let Some(room) = node.room.filter(|_| !gbox.spec.allow_node_overcommit)
            && let Err(full) = room.fits(room.allocated.unwrap_or_default(), &Limits::default(), &desired.limits)
        {
            why.push(format!("node {:?}: no room ({full})", node.name));
            continue;
        }
        let mut free = handle.panel.free_allocations(&node.id, ports).await?;
        free.shuffle(&mut rand::rng());
        match place(&free, &desired.ports, range) {
            Some((placement, assigned)) => return Ok((placement, assigned, node.id.clone())),
            None => why.push(format!("node {:?}: no free primary port with them beside it", node.name)),
        }
    }
    if nodes.is_empty() {
        why.push("no public node".into());
    }
    let placed = match desired.tags.is_empty() {
        true => format!("locations {}", desired.locations.join(", ")),
        false => format!("tags {}", desired.tags.join(", ")),
    };
    Err(Refusal::Ports(format!(
        "no node of {placed} of box {} has room and free ports in {}-{} for the primary port{}: {}; \
         free or add allocations, or widen spec.portRange",
        gbox.name_any(),
        range.lo,
        range.hi,
        match desired.ports.is_empty() {
            true => String::new(),
            false => format!(" and {}", listed(&desired.ports, None)),
        },
        why.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn alloc(id: u32, ip: &str, port: u16) -> Allocation {
        Allocation { id: id.to_string().into(), ip: ip.into(), alias: None, port }
    }

    fn want(pairs: &[(&str, &str)]) -> Vec<(String, Want)> {
        let map = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        wants(&map).expect("wants")
    }

    const ANY: Range = Range { lo: 1, hi: u16::MAX };

    #[test]
    fn wants_parse_offsets_and_any_and_name_a_bad_value() {
        assert_eq!(
            want(&[("RCON", "any"), ("QUERY", "+1")]),
            vec![("QUERY".into(), Want::Offset(1)), ("RCON".into(), Want::Any)]
        );
        let bad = BTreeMap::from([("QUERY".to_string(), "+0".to_string())]);
        assert_eq!(
            wants(&bad).unwrap_err(),
            "spec.ports.QUERY: must be +N (the primary port plus N, such as +1) or any, got \"+0\""
        );
        let twice = BTreeMap::from([("A".to_string(), "+1".to_string()), ("B".to_string(), "+1".to_string())]);
        assert_eq!(
            wants(&twice).unwrap_err(),
            "spec.ports.B: +1 is A's port already: give each variable its own offset"
        );
        assert_eq!(Want::parse("1"), None);
        assert_eq!(Want::parse("+70000"), None);
        assert_eq!(Range::parse(Some("30100-30200")), Ok(Range { lo: 30100, hi: 30200 }));
        assert!(Range::parse(Some("9-1")).is_err());
    }

    #[test]
    fn a_new_server_gets_its_offset_beside_the_primary_and_any_in_range() {
        let free = [alloc(1, "10.0.0.1", 30100), alloc(2, "10.0.0.2", 30101), alloc(3, "10.0.0.1", 30102)];
        let range = Range { lo: 30100, hi: 30110 };
        // 30101 is on another IP than 30100: no port on either IP has its +1 free.
        assert_eq!(place(&free, &want(&[("QUERY", "+1")]), range), None);
        // 30150 is out of range: nothing is left for RCON beside 30100 and 30101.
        let free = [alloc(1, "10.0.0.1", 30100), alloc(2, "10.0.0.1", 30101), alloc(3, "10.0.0.1", 30150)];
        assert_eq!(place(&free, &want(&[("QUERY", "+1"), ("RCON", "any")]), range), None);
        let free = [alloc(1, "10.0.0.1", 30100), alloc(2, "10.0.0.1", 30101), alloc(3, "10.0.0.1", 30105)];
        let (placement, assigned) = place(&free, &want(&[("QUERY", "+1"), ("RCON", "any")]), range).expect("fits");
        assert_eq!(placement, Placement { default: "1".into(), additional: vec!["2".into(), "3".into()] });
        assert_eq!(assigned.ports["QUERY"].port, 30101);
        assert_eq!(assigned.ports["RCON"].port, 30105);
    }

    #[test]
    fn an_existing_server_keeps_its_ports_and_is_given_only_what_it_lacks() {
        let primary = alloc(1, "10.0.0.1", 30100);
        let own = [primary.clone(), alloc(2, "10.0.0.1", 30101), alloc(4, "10.0.0.1", 30107)];
        let free = [alloc(5, "10.0.0.1", 30103), alloc(6, "10.0.0.1", 30104)];
        let wants = want(&[("QUERY", "+1"), ("RCON", "any"), ("VOICE", "any")]);
        // VOICE names 30107 now: it keeps it; RCON gets a free one.
        let names = |var: &str, port: u16| var == "VOICE" && port == 30107;
        let assigned = assign(&primary, &own, names, &wants, &free, ANY).expect("fits");
        assert_eq!(assigned.ports["QUERY"].port, 30101);
        assert_eq!(assigned.ports["VOICE"].port, 30107);
        assert_eq!(assigned.ports["RCON"].port, 30103);
        assert_eq!(assigned.add, vec![alloc(5, "10.0.0.1", 30103)]);
        // A hand edit of QUERY to another number changes nothing: +1 is the allocation at 30101.
        let assigned = assign(&primary, &own, |_, _| false, &wants[..1], &[], ANY).expect("fits");
        assert!(assigned.add.is_empty());
        // Nothing free: the unmet are named.
        let unmet = assign(&primary, &own[..1], |_, _| false, &wants, &[], ANY).unwrap_err();
        assert_eq!(unmet, vec!["QUERY".to_string(), "RCON".into(), "VOICE".into()]);
    }

    proptest! {
        /// Whatever is free, a placement uses only free allocations, once each, on the primary's IP
        /// and in range, with each offset at its port.
        #[test]
        fn a_placement_is_free_distinct_and_where_asked(
            ports in proptest::collection::btree_set(30_000u16..30_040, 0..30),
            ips in proptest::collection::vec(0u8..2, 30),
            offsets in proptest::collection::btree_set(1u16..4, 0..3),
            anys in 0usize..3,
        ) {
            let free: Vec<Allocation> = ports.iter().zip(&ips).enumerate()
                .map(|(i, (p, ip))| alloc(i as u32, &format!("10.0.0.{ip}"), *p)).collect();
            let mut spec = BTreeMap::new();
            for (i, n) in offsets.iter().enumerate() { spec.insert(format!("O{i}"), format!("+{n}")); }
            for i in 0..anys { spec.insert(format!("A{i}"), "any".to_string()); }
            let wants = wants(&spec).expect("wants");
            let range = Range { lo: 30_000, hi: 30_030 };
            if let Some((placement, assigned)) = place(&free, &wants, range) {
                let primary = free.iter().find(|a| a.id == placement.default.as_str()).expect("a free primary");
                prop_assert!(range.holds(primary.port));
                let mut seen = HashSet::from([primary.id.clone()]);
                for (var, want) in &wants {
                    let a = &assigned.ports[var];
                    prop_assert!(free.contains(a) && a.ip == primary.ip && range.holds(a.port));
                    prop_assert!(seen.insert(a.id.clone()), "{} given twice", a.id);
                    if let Want::Offset(n) = want { prop_assert_eq!(a.port, primary.port + n); }
                }
                prop_assert_eq!(placement.additional.len(), wants.len());
            } else {
                // Nothing fits: no primary in range has every want beside it (checked by brute force).
                for p in free.iter().filter(|a| range.holds(a.port)) {
                    let beside: Vec<&Allocation> = free.iter().filter(|a| a.ip == p.ip && a.id != p.id && range.holds(a.port)).collect();
                    let offsets_free = wants.iter().all(|(_, w)| match w {
                        Want::Offset(n) => beside.iter().any(|a| a.port == p.port + n),
                        Want::Any => true,
                    });
                    let others = beside.len() >= wants.len();
                    prop_assert!(!(offsets_free && others), "primary {} fits but was not found", p.port);
                }
            }
        }
    }
}
