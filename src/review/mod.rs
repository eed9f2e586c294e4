//! A box and its servers, checked and admitted without a cluster: the pure part shared by the
//! GameBox controller (the authority), the GameServer controller, the admission webhook and
//! `pterobox check`. [`ledger()`] is the one admission function they all call.

mod ledger;

pub use ledger::{Ledger, MAX_REJECTED_IN_LEDGER, ServerVerdict, ledger};

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::budget::{self, Amounts, Candidate, TemplateVars};
use crate::crd::{GameBox, GameBoxStatus, GamePanel, GameServer, LedgerState};

/// A sortable creation key: seconds since the epoch, zero-padded (objects not yet created sort last).
pub fn creation_key(server: &GameServer) -> String {
    let seconds = server.metadata.creation_timestamp.as_ref().map(|t| t.0.as_second()).unwrap_or(i64::MAX);
    format!("{seconds:020}")
}

/// Why `server` can never be admitted by `gbox` whatever the budget (an egg it does not offer, a
/// request that does not parse), if it cannot.
pub fn server_problem(gbox: &GameBox, server: &GameServer) -> Option<String> {
    if !gbox.spec.eggs.iter().any(|e| e.name == server.spec.egg) {
        let offered: Vec<&str> = gbox.spec.eggs.iter().map(|e| e.name.as_str()).collect();
        return Some(format!(
            "spec.egg: {:?} is not offered by box {} (offered: {})",
            server.spec.egg,
            gbox.name_any(),
            offered.join(", ")
        ));
    }
    let may = &gbox.spec.tenant_may;
    if server.spec.startup.is_some() && !may.startup {
        return Some(format!(
            "spec.startup: box {} does not let its servers set a startup command (its spec.tenantMay.startup is false): remove spec.startup to run the egg's",
            gbox.name_any()
        ));
    }
    if server.spec.image.is_some() && !may.image {
        return Some(format!(
            "spec.image: box {} does not let its servers choose an image (its spec.tenantMay.image is false): remove spec.image to run the egg's first",
            gbox.name_any()
        ));
    }
    budget::requested(&server.spec.resources).err().map(|e| e.to_string())
}

/// What a box's own spec gets wrong (templates with an unknown variable, a budget that does not
/// parse), if anything.
pub fn spec_problem(gbox: &GameBox) -> Option<String> {
    let vars = template_vars(gbox, "x");
    for (field, template) in
        [("spec.serverName", &gbox.spec.server_name), ("spec.serverDescription", &gbox.spec.server_description)]
    {
        if let Some(t) = template
            && let Err(e) = budget::render(t, &vars)
        {
            return Some(format!("{field}: {e}"));
        }
    }
    budget::limits(&gbox.spec.budget)
        .err()
        .or_else(|| budget::bounds(&gbox.spec.per_server).err())
        .map(|e| e.to_string())
}

/// Why `panel` refuses boxes of `gbox`'s namespace (`spec.allowedNamespaces`), if it does.
pub fn namespace_refused(gbox: &GameBox, panel: &GamePanel) -> Option<String> {
    let ns = gbox.namespace().unwrap_or_default();
    let allowed = &panel.spec.allowed_namespaces;
    (!allowed.is_empty() && !allowed.contains(&ns)).then(|| {
        format!(
            "spec.panelRef: GamePanel {} does not allow namespace {ns} (allowedNamespaces: {})",
            gbox.spec.panel_ref,
            allowed.join(", ")
        )
    })
}

/// Why `panel` cannot serve `gbox`'s placement and ids, if it cannot: Pelican has no locations
/// and no nests (a box places by node tags and names eggs by id alone), the others have no node
/// tags; string ids are Wisp v2's, and the other panels (and Wisp spoken to in v1) know integers only.
pub fn panel_cannot_serve(gbox: &GameBox, panel: &GamePanel) -> Option<String> {
    use crate::crd::Flavor;
    let (flavor, wisp) = (panel.spec.flavor, panel.spec.wisp_api_version.unwrap_or_default());
    let name = &gbox.spec.panel_ref;
    if flavor == Flavor::Pelican {
        if !gbox.spec.locations.is_empty() {
            return Some(format!(
                "spec.locations: GamePanel {name} is Pelican, which has no locations: place the box by spec.tags, the node tags its status.catalog.tags lists"
            ));
        }
        if let Some(i) = gbox.spec.eggs.iter().position(|e| e.nest.is_some()) {
            return Some(format!(
                "spec.eggs[{i}].nest: GamePanel {name} is Pelican, which has no nests: name the egg by its id alone"
            ));
        }
    } else if !gbox.spec.tags.is_empty() {
        return Some(format!(
            "spec.tags: node tags are Pelican's; GamePanel {name} is {flavor:?}: place the box by spec.locations"
        ));
    }
    let speaks = match flavor {
        Flavor::Pterodactyl => "Pterodactyl",
        Flavor::Wisp => "Wisp with wispApiVersion v1",
        Flavor::Pelican => "Pelican",
    };
    let eggs = gbox.spec.eggs.iter().enumerate().flat_map(|(i, e)| {
        let nest = e.nest.as_ref().map(|n| (format!("spec.eggs[{i}].nest"), n));
        nest.into_iter().chain([(format!("spec.eggs[{i}].egg"), &e.egg)])
    });
    let locations = gbox.spec.locations.iter().enumerate().map(|(i, l)| (format!("spec.locations[{i}]"), l));
    eggs.chain(locations).find(|(_, id)| !id.known_to(flavor, wisp)).map(|(field, id)| {
        format!(
            "{field}: {id:?} is a string id, which only Wisp's v2 media type knows; GamePanel {} speaks {speaks}: give the panel's integer id",
            gbox.spec.panel_ref,
            id = id.key()
        )
    })
}

/// The admission candidates of a box, and the servers its spec makes invalid (by UID, why).
///
/// A server the record admitted before stays a candidate when its spec turns invalid (an egg no
/// longer offered, a field the box stopped allowing), asking for what it holds: its panel server
/// still holds that, so the room is not given to another server until it is gone.
fn candidates<'a>(
    gbox: &GameBox,
    servers: impl IntoIterator<Item = &'a GameServer>,
) -> (Vec<Candidate>, BTreeMap<String, String>) {
    let servers: Vec<&GameServer> = servers.into_iter().collect();
    let claimed = adoption_claims(gbox, &servers);
    let record = admitted(gbox.status.as_ref());
    let mut candidates = Vec::new();
    let mut invalid = BTreeMap::new();
    for s in servers {
        let uid = s.uid().unwrap_or_default();
        let problem = server_problem(gbox, s).or_else(|| claimed.get(&uid).cloned());
        let requested = match (&problem, record.get(&uid)) {
            (None, _) => budget::requested(&s.spec.resources).ok(),
            (Some(_), held) => held.copied(),
        };
        if let Some(problem) = problem {
            invalid.insert(uid.clone(), problem);
        }
        if let Some(requested) = requested {
            candidates.push(Candidate {
                uid,
                name: s.name_any(),
                created: creation_key(s),
                requested,
                deleting: s.metadata.deletion_timestamp.is_some(),
                holds: s.status.as_ref().and_then(|st| budget::reserved(st.reserved.as_ref()?).ok()),
            });
        }
    }
    (candidates, invalid)
}

/// The servers of a box that name a panel server another of its servers already adopts (by UID,
/// why): of the servers naming one panel server, the one the ledger admitted keeps it, else the
/// first created (then by name).
fn adoption_claims(gbox: &GameBox, servers: &[&GameServer]) -> BTreeMap<String, String> {
    let admitted = admitted(gbox.status.as_ref());
    let mut by_target: BTreeMap<&crate::crd::Adopt, Vec<&GameServer>> = BTreeMap::new();
    for s in servers {
        if let Some(adopt) = &s.spec.adopt {
            by_target.entry(adopt).or_default().push(s);
        }
    }
    let mut refused = BTreeMap::new();
    for (target, mut claimants) in by_target.into_iter().filter(|(_, c)| c.len() > 1) {
        claimants.sort_by_key(|s| {
            let held = s.uid().is_some_and(|uid| admitted.contains_key(&uid));
            (!held, creation_key(s), s.name_any())
        });
        let winner = claimants[0].name_any();
        for loser in &claimants[1..] {
            refused.insert(
                loser.uid().unwrap_or_default(),
                format!("spec.adopt: {target} is already adopted by GameServer {winner} of box {}", gbox.name_any()),
            );
        }
    }
    refused
}

/// The ledger's admitted reservations, by UID.
fn admitted(status: Option<&GameBoxStatus>) -> BTreeMap<String, Amounts> {
    status
        .into_iter()
        .flat_map(|s| s.servers.iter())
        .filter(|e| e.state == LedgerState::Admitted)
        .filter_map(|e| Some((e.uid.as_ref()?.to_string(), budget::reserved(e.reserved.as_ref()?).ok()?)))
        .collect()
}

/// Whether `expires_at` has passed, and how long until it does.
pub fn expiry(gbox: &GameBox) -> (bool, Option<Duration>) {
    match &gbox.spec.expires_at {
        None => (false, None),
        Some(t) => {
            let left = t.0.duration_since(Timestamp::now());
            if left.is_positive() {
                (false, Some(Duration::from_secs(left.as_secs() as u64 + 1)))
            } else {
                (true, None)
            }
        }
    }
}

/// The template variables of a server of this box.
pub fn template_vars(gbox: &GameBox, server_name: &str) -> TemplateVars {
    let owner = &gbox.spec.owner;
    TemplateVars {
        owner_email: owner.email.clone(),
        owner_username: owner
            .username
            .clone()
            .unwrap_or_else(|| owner.email.split('@').next().unwrap_or_default().to_string()),
        owner_firstname: owner.first_name.clone(),
        owner_lastname: owner.last_name.clone(),
        product_name: gbox.spec.product_name.clone().unwrap_or_default(),
        service_id: gbox.spec.service_id.clone().unwrap_or_else(|| gbox.name_any()),
        service_expiration: gbox.spec.expires_at.as_ref().map(|t| t.0.to_string()).unwrap_or_default(),
        box_name: gbox.name_any(),
        namespace: gbox.namespace().unwrap_or_default(),
        server_name: server_name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gbox(eggs: serde_json::Value, locations: serde_json::Value) -> GameBox {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "b", "namespace": "shop"},
            "spec": {"panelRef": "main", "owner": {"email": "a@example.com", "firstName": "A", "lastName": "B"},
                     "budget": {"memory": "1Gi", "disk": "1Gi", "cpu": "1", "servers": 1},
                     "eggs": eggs, "locations": locations}
        }))
        .expect("box")
    }

    fn panel(flavor: &str, wisp: Option<&str>) -> GamePanel {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "main"},
            "spec": {"flavor": flavor, "url": "https://panel.example.com", "wispApiVersion": wisp,
                     "credentialsSecretRef": {"namespace": "ns", "name": "key", "key": "apiKey"}}
        }))
        .expect("panel")
    }

    #[test]
    fn a_pelican_panel_refuses_locations_and_nests_and_the_others_refuse_tags() {
        let pterodactyl_shaped =
            gbox(serde_json::json!([{"name": "paper", "nest": 1, "egg": 5}]), serde_json::json!([1]));
        let refused = panel_cannot_serve(&pterodactyl_shaped, &panel("Pelican", None)).expect("refused");
        assert!(refused.starts_with("spec.locations:") && refused.contains("spec.tags"), "{refused}");
        let mut nested = pterodactyl_shaped.clone();
        nested.spec.locations.clear();
        nested.spec.tags = vec!["local".into()];
        let refused = panel_cannot_serve(&nested, &panel("Pelican", None)).expect("refused");
        assert!(refused.starts_with("spec.eggs[0].nest:") && refused.contains("by its id alone"), "{refused}");
        let mut pelican_shaped = nested.clone();
        pelican_shaped.spec.eggs[0].nest = None;
        assert_eq!(panel_cannot_serve(&pelican_shaped, &panel("Pelican", None)), None);
        let refused = panel_cannot_serve(&pelican_shaped, &panel("Pterodactyl", None)).expect("refused");
        assert!(refused.starts_with("spec.tags:") && refused.contains("spec.locations"), "{refused}");
    }

    #[test]
    fn string_ids_are_wisp_v2s_and_named_where_the_panel_cannot_know_them() {
        let v2_ids = gbox(
            serde_json::json!([{"name": "paper", "nest": 1, "egg": "egg_01kt0000000000000000000003"}]),
            serde_json::json!(["loc_01kt0000000000000000000001"]),
        );
        let refused = panel_cannot_serve(&v2_ids, &panel("Pterodactyl", None)).expect("refused on Pterodactyl");
        assert!(refused.starts_with("spec.eggs[0].egg: \"egg_01kt"), "{refused}");
        assert!(refused.contains("speaks Pterodactyl"), "{refused}");
        assert!(
            panel_cannot_serve(&v2_ids, &panel("Wisp", Some("v1"))).is_some_and(|r| r.contains("wispApiVersion v1"))
        );
        assert_eq!(panel_cannot_serve(&v2_ids, &panel("Wisp", Some("v2"))), None);
        // Digits as a string are the integer id.
        let digits = gbox(serde_json::json!([{"name": "paper", "nest": "1", "egg": "3"}]), serde_json::json!([1]));
        assert_eq!(panel_cannot_serve(&digits, &panel("Pterodactyl", None)), None);
        assert_eq!(digits.spec.eggs[0].egg, crate::crd::PanelId::Int(3), "\"3\" and 3 are one id");
        let location = gbox(
            serde_json::json!([{"name": "paper", "nest": 1, "egg": 3}]),
            serde_json::json!([1, "loc_01kt0000000000000000000002"]),
        );
        let refused = panel_cannot_serve(&location, &panel("Pterodactyl", None)).expect("refused");
        assert!(refused.starts_with("spec.locations[1]:"), "{refused}");
    }
}
