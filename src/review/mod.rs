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
    budget::limits(&gbox.spec.budget).err().map(|e| e.to_string())
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

/// The admission candidates of a box, and the servers refused before admission (by UID, why).
fn candidates<'a>(
    gbox: &GameBox,
    servers: impl IntoIterator<Item = &'a GameServer>,
) -> (Vec<Candidate>, BTreeMap<String, String>) {
    let servers: Vec<&GameServer> = servers.into_iter().collect();
    let claimed = adoption_claims(gbox, &servers);
    let mut candidates = Vec::new();
    let mut invalid = BTreeMap::new();
    for s in servers {
        let uid = s.uid().unwrap_or_default();
        if let Some(problem) = server_problem(gbox, s).or_else(|| claimed.get(&uid).cloned()) {
            invalid.insert(uid, problem);
            continue;
        }
        if let Ok(requested) = budget::requested(&s.spec.resources) {
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
        .filter_map(|e| Some((e.uid.clone()?, budget::reserved(e.reserved.as_ref()?).ok()?)))
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
