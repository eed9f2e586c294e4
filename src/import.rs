//! `pterobox import`: reads a panel and writes the GameBox and GameServer manifests that describe
//! what runs there today, each server with `spec.adopt`, ready to commit to Git. It only reads the
//! panel. `--dry-run` prints, per server, what applying the manifests will change on the panel: the
//! very diff the operator computes (`gameserver::desired`), so the two cannot disagree.
//!
//! Each owner's servers become one box (or all of them one box, `--box-owner`); the box offers the
//! eggs its servers run, places new servers in their nodes' locations, applies the swap and IO
//! weight most of them have, and its budget is the sum of what they hold (or `--budget`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ObjectMeta;

use crate::budget::units::{mib_to_quantity, percent_to_quantity};
use crate::budget::{self, Amounts, Resource};
use crate::controller::gameserver::desired;
use crate::crd::{
    Adopt, EggOffer, GameBox, GameBoxSpec, GameServer, GameServerSpec, Owner, PanelId, PerServer, ServerResources,
    TenantMay,
};
use crate::panel::{self, Egg, Node, Panel, PanelServer, PanelUser, ServerText, as_stored};

/// Where the panel is, whose servers to import, and where the manifests go.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    source: crate::panel_source::PanelSource,
    /// The GamePanel the boxes name in `spec.panelRef` (default: --gamepanel).
    #[arg(long)]
    panel_ref: Option<String>,
    /// Import only the servers of this owner: a panel user id or an e-mail (repeatable).
    #[arg(long = "owner")]
    owners: Vec<String>,
    /// Put every imported server in one box owned by this panel user (id or e-mail): servers of
    /// other owners are given to it when they are adopted.
    #[arg(long)]
    box_owner: Option<String>,
    /// The namespace of every manifest (default: `customer-<owner>` per owner, with its Namespace).
    #[arg(long)]
    namespace: Option<String>,
    /// The budget of each box, e.g. `memory=16Gi,cpu=8,servers=10`; what is not given is the sum
    /// of what the box's servers hold.
    #[arg(long, value_parser = parse_budget)]
    budget: Option<BTreeMap<Resource, u64>>,
    /// Write one file per box into this directory instead of printing the manifests.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Print what applying the manifests would change on the panel, server by server.
    #[arg(long)]
    dry_run: bool,
}

/// `memory=16Gi,disk=200Gi,cpu=8,servers=10,databases=4,allocations=20,backups=10`.
fn parse_budget(text: &str) -> Result<BTreeMap<Resource, u64>, String> {
    let mut out = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').ok_or_else(|| format!("{pair:?}: expected resource=value"))?;
        let resource = Resource::ALL.into_iter().find(|r| r.name() == name.trim()).ok_or_else(|| {
            let names: Vec<&str> = Resource::ALL.iter().map(|r| r.name()).collect();
            format!("{name:?} is not a resource (resources: {})", names.join(", "))
        })?;
        let value = value.trim();
        let amount = match resource {
            Resource::Memory | Resource::Disk => budget::units::to_mib(value).map_err(|e| format!("{name}: {e}"))?,
            Resource::Cpu => budget::units::to_percent(value).map_err(|e| format!("{name}: {e}"))?,
            _ => value.parse().map_err(|_| format!("{name}: {value:?} is not a count"))?,
        };
        out.insert(resource, amount);
    }
    Ok(out)
}

/// What import reads of a panel.
#[derive(Debug, Clone, Default)]
pub struct PanelView {
    /// Every server with its text.
    pub servers: Vec<(PanelServer, ServerText)>,
    /// The owners of those servers (and `--box-owner`), by id.
    pub users: BTreeMap<String, PanelUser>,
    pub nodes: Vec<Node>,
    /// The eggs the servers run, with their variables, by (nest, egg).
    pub eggs: BTreeMap<(String, String), Egg>,
}

/// The choices of `pterobox import`, resolved.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub panel_ref: String,
    /// Owner ids whose servers are imported; empty: every owner.
    pub owners: BTreeSet<String>,
    /// The owner id of the one box every server goes to.
    pub box_owner: Option<String>,
    pub namespace: Option<String>,
    pub budget: BTreeMap<Resource, u64>,
}

/// The manifests for one box.
#[derive(Debug, Clone)]
pub struct BoxPlan {
    /// A Namespace to create with it (one per owner when `--namespace` is not given).
    pub namespace: Option<Namespace>,
    pub gbox: GameBox,
    pub servers: Vec<ServerPlan>,
}

/// One adopted server: its manifest and what adopting it changes on the panel.
#[derive(Debug, Clone)]
pub struct ServerPlan {
    pub server: GameServer,
    pub panel_id: String,
    pub changes: Vec<String>,
}

/// Everything import decided.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub boxes: Vec<BoxPlan>,
    /// Servers left out, and why.
    pub skipped: Vec<String>,
}

/// A DNS label from free text: lower-case letters and digits, other runs as one `-`, at most 63
/// characters; `fallback` when nothing is left.
fn label(text: &str, fallback: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.truncate(63);
    let out = out.trim_matches('-').to_string();
    if out.is_empty() { fallback.to_string() } else { out }
}

/// `base`, or `base-2`, `base-3`… whichever is not taken yet (and takes it).
fn unique(base: String, taken: &mut BTreeSet<String>) -> String {
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains(&name) {
        let suffix = format!("-{n}");
        let mut stem = base.clone();
        stem.truncate(63 - suffix.len());
        name = format!("{}{suffix}", stem.trim_end_matches('-'));
        n += 1;
    }
    taken.insert(name.clone());
    name
}

/// The most frequent value (the smallest of equals, so that the choice does not depend on order).
fn most_common<T: Ord + Copy>(values: impl IntoIterator<Item = T>) -> Option<T> {
    let mut counts: BTreeMap<T, usize> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    let best = counts.values().copied().max()?;
    counts.into_iter().find(|(_, n)| *n == best).map(|(v, _)| v)
}

/// Decides the boxes and servers for what the panel runs.
pub fn plan(view: &PanelView, options: &Options) -> Result<Plan, String> {
    let mut plan = Plan::default();
    let mut groups: BTreeMap<String, Vec<&(PanelServer, ServerText)>> = BTreeMap::new();
    for entry in &view.servers {
        let owner = entry.0.user.to_string();
        if !options.owners.is_empty() && !options.owners.contains(&owner) {
            continue;
        }
        groups.entry(options.box_owner.clone().unwrap_or(owner)).or_default().push(entry);
    }
    let mut box_names = BTreeSet::new();
    for (owner_id, servers) in groups {
        let Some(user) = view.users.get(&owner_id) else {
            plan.skipped
                .push(format!("{} server(s) of panel user {owner_id}: the user could not be read", servers.len()));
            continue;
        };
        if let Some(b) = box_plan(view, options, user, &servers, &mut box_names, &mut plan.skipped)? {
            plan.boxes.push(b);
        }
    }
    Ok(plan)
}

fn box_plan(
    view: &PanelView,
    options: &Options,
    user: &PanelUser,
    servers: &[&(PanelServer, ServerText)],
    box_names: &mut BTreeSet<String>,
    skipped: &mut Vec<String>,
) -> Result<Option<BoxPlan>, String> {
    let local = user.email.split('@').next().unwrap_or_default();
    let slug = label(user.username.as_deref().unwrap_or(local), &format!("user-{}", user.id));
    let box_name = unique(slug.clone(), box_names);
    let (namespace, new_namespace) = match &options.namespace {
        Some(ns) => (ns.clone(), false),
        None => (label(&format!("customer-{box_name}"), "customer"), true),
    };
    // Servers the box cannot describe: no egg to offer, or a limit the panel leaves unlimited.
    let mut kept = Vec::new();
    for entry in servers {
        let (s, text) = (&entry.0, &entry.1);
        let unlimited: Vec<&str> =
            [("memory", s.limits.memory_mib), ("disk", s.limits.disk_mib), ("cpu", s.limits.cpu_percent)]
                .into_iter()
                .filter(|(_, v)| *v == 0)
                .map(|(n, _)| n)
                .collect();
        let why = if !unlimited.is_empty() {
            Some(format!(
                "its {} unlimited (0) on the panel, and a GameServer needs a limit: set one on the panel, then import again",
                match unlimited.len() {
                    1 => format!("{} is", unlimited[0]),
                    _ => format!("{} are", unlimited.join(" and ")),
                }
            ))
        } else if !view.eggs.contains_key(&egg_of(s)) {
            Some(format!("its egg {} of nest {} could not be read", s.egg, s.nest))
        } else {
            None
        };
        match why {
            Some(why) => {
                skipped.push(format!("panel server {} {:?} (owner {}): {why}", s.id, as_stored(&text.name), s.user))
            }
            None => kept.push(*entry),
        }
    }
    if kept.is_empty() {
        return Ok(None);
    }

    // The eggs on offer, named after the panel's egg names.
    let mut egg_names = BTreeSet::new();
    let mut offers: BTreeMap<(String, String), EggOffer> = BTreeMap::new();
    for (s, _) in kept.iter().map(|e| (&e.0, &e.1)) {
        if let Some(egg) = view.eggs.get(&egg_of(s))
            && !offers.contains_key(&egg_of(s))
        {
            let name = unique(label(&egg.name, &format!("egg-{}", egg.id)), &mut egg_names);
            let nest = (!s.nest.is_empty()).then(|| PanelId::of(&s.nest));
            let offer = EggOffer { name, nest, egg: PanelId::of(&s.egg) };
            offers.insert(egg_of(s), offer);
        }
    }
    let (swap, io) = most_common(kept.iter().map(|e| (e.0.limits.swap_mib, e.0.limits.io))).unwrap_or((0, 500));
    // Placement: the locations of the servers' nodes, or on Pelican (no locations) their tags.
    let node_of: BTreeMap<&str, &Node> = view.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let used_nodes: Vec<&Node> = kept.iter().filter_map(|e| node_of.get(e.0.node.as_str()).copied()).collect();
    let nodes: Vec<&Node> = if used_nodes.is_empty() { view.nodes.iter().collect() } else { used_nodes };
    let locations: BTreeSet<PanelId> =
        nodes.iter().filter(|n| !n.location.is_empty()).map(|n| PanelId::of(&n.location)).collect();
    let tags: BTreeSet<String> = match locations.is_empty() {
        true => nodes.iter().flat_map(|n| n.tags.iter().cloned()).collect(),
        false => BTreeSet::new(),
    };
    if locations.is_empty() && tags.is_empty() {
        return Err("the panel lists no node with a location or a tag, so the box would have no placement".into());
    }
    // The servers first: the box's budget is what they ask, unless `--budget` says otherwise.
    let mut server_names = BTreeSet::new();
    let mut described = Vec::new();
    let mut used = Amounts::default();
    for entry in kept.iter().copied() {
        let (s, text) = (&entry.0, &entry.1);
        let (Some(egg), Some(offer)) = (view.eggs.get(&egg_of(s)), offers.get(&egg_of(s))) else {
            continue;
        };
        let name = unique(label(&text.name, &format!("server-{}", s.id)), &mut server_names);
        let server = game_server(&name, &namespace, &box_name, offer, egg, s, text);
        let requested = budget::requested(&server.spec.resources).map_err(|e| e.to_string())?;
        used = used.plus(&Amounts { servers: 1, ..requested });
        described.push((server, requested, egg, entry));
    }
    let limits = Resource::ALL.into_iter().fold(used, |mut limits, r| {
        if let Some(given) = options.budget.get(&r) {
            limits.set(r, *given);
        }
        limits
    });
    let names_of = |name: &str| {
        let name = as_stored(name);
        if name.is_empty() { local.to_string() } else { name.to_string() }
    };
    let mut gbox = GameBox::new(
        &box_name,
        GameBoxSpec {
            panel_ref: options.panel_ref.clone(),
            owner: Owner {
                email: user.email.clone(),
                panel_user_id: Some(user.id.clone()),
                username: user.username.clone().filter(|u| {
                    u.len() >= 3
                        && u.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                        && u.starts_with(|c: char| c.is_ascii_alphanumeric())
                        && u.ends_with(|c: char| c.is_ascii_alphanumeric())
                }),
                first_name: names_of(&user.first_name),
                last_name: names_of(&user.last_name),
            },
            product_name: None,
            service_id: None,
            expires_at: None,
            suspended: false,
            budget: budget::to_budget(&limits),
            per_server: PerServer {
                swap: Quantity(mib_to_quantity(swap)),
                io: i64::try_from(io).unwrap_or(500),
                ..Default::default()
            },
            eggs: offers.values().cloned().collect(),
            locations: locations.into_iter().collect(),
            tags: tags.into_iter().collect(),
            port_range: None,
            allow_node_overcommit: false,
            server_name: None,
            server_description: None,
            deletion_policy: Default::default(),
            // The other owners whose servers this box takes (`--box-owner`).
            adopt_from: kept
                .iter()
                .map(|e| e.0.user.to_string())
                .filter(|u| *u != user.id)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            // A server that runs a startup command of its own keeps it: the box must allow it.
            tenant_may: TenantMay {
                startup: described.iter().any(|(server, ..)| server.spec.startup.is_some()),
                ..Default::default()
            },
        },
    );
    gbox.metadata.namespace = Some(namespace.clone());
    let mut planned = Vec::new();
    for (server, requested, egg, (s, text)) in described {
        let changes = changes(&server, &gbox, egg, &requested, &user.id, s, text)?;
        planned.push(ServerPlan { server, panel_id: s.id.to_string(), changes });
    }
    let namespace = new_namespace.then(|| Namespace {
        metadata: ObjectMeta { name: Some(namespace), ..Default::default() },
        ..Default::default()
    });
    Ok(Some(BoxPlan { namespace, gbox, servers: planned }))
}

/// The GameServer that describes panel server `s` as it is (where the spec can say it).
fn game_server(
    name: &str,
    namespace: &str,
    box_name: &str,
    offer: &EggOffer,
    egg: &Egg,
    s: &PanelServer,
    text: &ServerText,
) -> GameServer {
    let same = |a: &str, b: &str| as_stored(a) == as_stored(b);
    // Egg variables whose value is not the egg's default (the panel shows the default for a
    // variable it stores nothing for).
    let environment = egg
        .variables
        .iter()
        .filter_map(|v| {
            let value = text.environment.get(&v.env_variable)?;
            (!same(value, &v.default_value)).then(|| (v.env_variable.clone(), as_stored(value).to_string()))
        })
        .collect();
    let default_image = egg.docker_images.first().map(String::as_str).unwrap_or_default();
    let image = (!same(&text.image, default_image) && egg.docker_images.iter().any(|i| same(i, &text.image)))
        .then(|| as_stored(&text.image).to_string());
    let startup = (!same(&text.startup, &egg.startup) && !as_stored(&text.startup).is_empty())
        .then(|| as_stored(&text.startup).to_string());
    let description = Some(as_stored(&text.description).to_string()).filter(|d| !d.is_empty());
    let display_name = Some(as_stored(&text.name).to_string()).filter(|n| !n.is_empty());
    // An unlimited count (null) becomes what the server has: no databases or backups, and the
    // allocations it holds (at least its primary one).
    let allocations = s.features.allocations.unwrap_or(s.allocations.len() as u64).max(1);
    let mut server = GameServer::new(
        name,
        GameServerSpec {
            box_name: box_name.to_string(),
            egg: offer.name.clone(),
            display_name,
            description,
            resources: ServerResources {
                memory: Quantity(mib_to_quantity(s.limits.memory_mib)),
                disk: Quantity(mib_to_quantity(s.limits.disk_mib)),
                cpu: Quantity(percent_to_quantity(s.limits.cpu_percent)),
                databases: i64::try_from(s.features.databases.unwrap_or(0)).unwrap_or(i64::MAX),
                allocations: i64::try_from(allocations).unwrap_or(i64::MAX),
                backups: i64::try_from(s.features.backups.unwrap_or(0)).unwrap_or(i64::MAX),
            },
            environment,
            ports: Default::default(),
            image,
            startup,
            suspended: s.suspended,
            deletion_policy: None,
            adopt: Some(Adopt { id: Some(s.id.to_string()), external_id: None }),
        },
    );
    server.metadata.namespace = Some(namespace.to_string());
    server
}

/// What adopting `s` as `server` changes on the panel, field by field: the operator's own diff.
fn changes(
    server: &GameServer,
    gbox: &GameBox,
    egg: &Egg,
    requested: &Amounts,
    owner: &str,
    s: &PanelServer,
    text: &ServerText,
) -> Result<Vec<String>, String> {
    let desired = desired::desired(server, gbox, egg, requested, owner, server.spec.suspended)
        .map_err(|e| format!("panel server {}: {e}", s.id))?;
    let mut out = vec![format!(
        "external id: {} → the GameServer's UID",
        s.external_id.as_ref().map_or("none".to_string(), |e| format!("{e:?}"))
    )];
    if s.user != desired.user {
        out.push(format!("owner: panel user {} → {}", s.user, desired.user));
    }
    let shown = |v: Option<u64>| v.map_or("unlimited".to_string(), |v| v.to_string());
    if let Some(build) = desired.build(s) {
        let (from, to) = (s.limits, build.limits);
        for (field, a, b) in [
            ("memory", from.memory_mib, to.memory_mib),
            ("swap", from.swap_mib, to.swap_mib),
            ("disk", from.disk_mib, to.disk_mib),
            ("io", from.io, to.io),
            ("cpu", from.cpu_percent, to.cpu_percent),
        ] {
            if a != b {
                out.push(format!("limits.{field}: {a} → {b}"));
            }
        }
        let (from, to) = (s.features, build.features);
        for (field, a, b) in [
            ("databases", from.databases, to.databases),
            ("allocations", from.allocations, to.allocations),
            ("backups", from.backups, to.backups),
        ] {
            if a != b {
                out.push(format!("feature_limits.{field}: {} → {}", shown(a), shown(b)));
            }
        }
    }
    if let Some(startup) = desired.startup(s) {
        if as_stored(&text.image) != startup.image {
            out.push(format!("image: {:?} → {:?} (not an image of egg {:?})", text.image, startup.image, egg.name));
        }
        if as_stored(&text.startup) != startup.startup {
            out.push(format!("startup: {:?} → {:?}", text.startup, startup.startup));
        }
        for (k, v) in &startup.environment {
            if text.environment.get(k).map(|x| as_stored(x)) != Some(v.as_str()) {
                out.push(format!("environment.{k}: {:?} → {v:?}", text.environment.get(k).map_or("", |x| x.as_str())));
            }
        }
    }
    Ok(out)
}

/// The manifests of one box as a YAML stream.
pub fn manifests(b: &BoxPlan, source: &str) -> Result<String, serde_yaml::Error> {
    let used = b.servers.len();
    let mut out = format!(
        "# Written by `pterobox import` from {source}: {used} server(s) of panel user {} ({}).\n\
         # Applying this adopts them: `pterobox import --dry-run` lists what that changes on the panel.\n",
        b.gbox.spec.owner.panel_user_id.as_deref().unwrap_or_default(),
        b.gbox.spec.owner.email
    );
    let mut docs = Vec::new();
    if let Some(ns) = &b.namespace {
        docs.push(serde_yaml::to_string(ns)?);
    }
    docs.push(serde_yaml::to_string(&b.gbox)?);
    for s in &b.servers {
        docs.push(serde_yaml::to_string(&s.server)?);
    }
    for doc in docs {
        out.push_str("---\n");
        out.push_str(&doc);
    }
    Ok(out)
}

/// What applying the plan changes on the panel, server by server.
pub fn dry_run(plan: &Plan) -> String {
    let mut out = String::new();
    for b in &plan.boxes {
        let ns = b.gbox.metadata.namespace.as_deref().unwrap_or_default();
        let name = b.gbox.metadata.name.as_deref().unwrap_or_default();
        let _ = writeln!(
            out,
            "GameBox {ns}/{name} (owner panel user {}):",
            b.gbox.spec.owner.panel_user_id.as_deref().unwrap_or_default()
        );
        for s in &b.servers {
            let server = s.server.metadata.name.as_deref().unwrap_or_default();
            let _ = writeln!(
                out,
                "  GameServer {server} adopts panel server {}: {} change(s)",
                s.panel_id,
                s.changes.len()
            );
            for change in &s.changes {
                let _ = writeln!(out, "    {change}");
            }
        }
    }
    for skipped in &plan.skipped {
        let _ = writeln!(out, "not imported: {skipped}");
    }
    out
}

/// Reads everything import needs: every server, their owners, the nodes and the eggs.
pub async fn read(panel: &dyn Panel, extra_users: &[String]) -> Result<PanelView, panel::PanelError> {
    let mut servers = Vec::new();
    let mut page = 1;
    loop {
        let p = panel.described_servers(page, panel::LIST_PAGE_SIZE).await?;
        let last = p.total_pages <= page || p.items.is_empty();
        servers.extend(p.items);
        if last {
            break;
        }
        page = panel::next_page(page, "GET /servers")?;
    }
    let mut users = BTreeMap::new();
    let ids: BTreeSet<String> =
        servers.iter().map(|(s, _)| s.user.to_string()).chain(extra_users.iter().cloned()).collect();
    for id in ids {
        if let Some(user) = panel.user(&id).await? {
            users.insert(id, user);
        }
    }
    let mut eggs = BTreeMap::new();
    for key in servers.iter().map(|(s, _)| egg_of(s)).collect::<BTreeSet<_>>() {
        match panel.egg(&key.0, &key.1).await {
            Ok(egg) => {
                eggs.insert(key, egg);
            }
            Err(panel::PanelError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(PanelView { servers, users, nodes: panel.nodes().await?, eggs })
}

/// The (nest, egg) of a panel server, as the view keeps its eggs.
fn egg_of(s: &PanelServer) -> (String, String) {
    (s.nest.to_string(), s.egg.to_string())
}

/// A user named by id or e-mail.
async fn resolve_user(panel: &dyn Panel, who: &str) -> anyhow::Result<PanelUser> {
    let found = match who.contains('@') {
        true => panel.user_by_email(who).await?,
        false => panel.user(who).await?,
    };
    found.ok_or_else(|| anyhow::anyhow!("no panel user {who:?}"))
}

/// The panel client, the GamePanel name the boxes should name, and where they come from.
async fn connect(args: &Args) -> anyhow::Result<(std::sync::Arc<dyn Panel>, String, String)> {
    let connected = args.source.connect(240).await?;
    let panel_ref = match (&args.panel_ref, &connected.gamepanel) {
        (Some(name), _) | (None, Some(name)) => name.clone(),
        (None, None) => anyhow::bail!("--panel-ref: name the GamePanel the boxes will use (with --url)"),
    };
    let source = connected.gamepanel.as_ref().map_or_else(|| connected.url.clone(), |_| connected.describe());
    Ok((connected.panel, panel_ref, source))
}

pub async fn run(args: Args) -> anyhow::Result<std::process::ExitCode> {
    let (panel, panel_ref, source) = connect(&args).await?;
    let panel = panel.as_ref();
    let mut owners = BTreeSet::new();
    for who in &args.owners {
        owners.insert(resolve_user(panel, who).await?.id);
    }
    let box_owner = match &args.box_owner {
        Some(who) => Some(resolve_user(panel, who).await?.id),
        None => None,
    };
    let view = read(panel, box_owner.as_slice()).await?;
    let options = Options {
        panel_ref,
        owners,
        box_owner,
        namespace: args.namespace.clone(),
        budget: args.budget.clone().unwrap_or_default(),
    };
    let plan = plan(&view, &options).map_err(anyhow::Error::msg)?;
    for skipped in &plan.skipped {
        eprintln!("warning: not imported: {skipped}");
    }
    if plan.boxes.is_empty() {
        eprintln!("error: no server to import");
        return Ok(std::process::ExitCode::FAILURE);
    }
    if args.dry_run {
        print!("{}", dry_run(&plan));
        return Ok(std::process::ExitCode::SUCCESS);
    }
    for b in &plan.boxes {
        let text = manifests(b, &source)?;
        match &args.output {
            None => print!("{text}"),
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                let ns = b.gbox.metadata.namespace.as_deref().unwrap_or_default();
                let name = b.gbox.metadata.name.as_deref().unwrap_or_default();
                let path = dir.join(format!("{ns}-{name}.yaml"));
                std::fs::write(&path, text)?;
                eprintln!("wrote {} ({} servers)", path.display(), b.servers.len());
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::{EggVariable, FeatureLimits, InstallState, Limits, Variables};

    fn egg() -> Egg {
        Egg {
            id: "3".into(),
            nest: "1".into(),
            name: "Paper (Minecraft)".into(),
            docker_images: vec!["java:21".into(), "java:17".into()],
            startup: "java -jar {{SERVER_JARFILE}}".into(),
            variables: vec![EggVariable {
                name: "Version".into(),
                env_variable: "VERSION".into(),
                default_value: "latest".into(),
                rules: "required".into(),
            }],
        }
    }

    /// A panel server as import reads it: 1 GiB, 5 GiB, 1 core, swap 0, io 500, paper.
    fn server(id: &str, owner: &str, name: &str) -> (PanelServer, ServerText) {
        let text = ServerText {
            name: name.into(),
            description: String::new(),
            startup: egg().startup,
            image: "java:21".into(),
            environment: [("VERSION".to_string(), "latest".to_string()), ("P_SERVER_UUID".into(), "x".into())].into(),
        };
        let server = PanelServer {
            id: id.into(),
            external_id: None,
            uuid: format!("uuid-{id}").as_str().into(),
            identifier: id.into(),
            name: text.name.as_str().into(),
            description: "".into(),
            suspended: false,
            install: InstallState::Installed,
            limits: Limits { memory_mib: 1024, swap_mib: 0, disk_mib: 5120, io: 500, cpu_percent: 100 },
            features: FeatureLimits { databases: Some(0), allocations: Some(1), backups: Some(0) },
            user: owner.into(),
            node: "1".into(),
            allocation: "10".into(),
            nest: "1".into(),
            egg: "3".into(),
            startup: text.startup.as_str().into(),
            image: text.image.as_str().into(),
            environment: text.environment.iter().collect::<Variables>(),
            allocations: vec![],
            switches: Default::default(),
        };
        (server, text)
    }

    fn user(id: &str, email: &str, username: &str) -> PanelUser {
        PanelUser {
            id: id.into(),
            external_id: None,
            email: email.into(),
            username: Some(username.into()),
            first_name: "A".into(),
            last_name: String::new(),
        }
    }

    fn view(servers: Vec<(PanelServer, ServerText)>) -> PanelView {
        PanelView {
            servers,
            users: [
                ("7".to_string(), user("7", "ann@example.com", "ann")),
                ("8".into(), user("8", "ben@x.org", "Ben")),
            ]
            .into(),
            nodes: vec![
                Node { id: "1".into(), name: "a".into(), location: "4".into(), tags: vec![], public: true, room: None },
                Node { id: "2".into(), name: "b".into(), location: "5".into(), tags: vec![], public: true, room: None },
            ],
            eggs: [(("1".into(), "3".into()), egg())].into(),
        }
    }

    fn options() -> Options {
        Options { panel_ref: "main".into(), ..Options::default() }
    }

    #[test]
    fn names_are_dns_labels_and_unique() {
        assert_eq!(label("Dave's Survival World!", "x"), "dave-s-survival-world");
        assert_eq!(label("---", "server-9"), "server-9");
        assert_eq!(label(&"a".repeat(80), "x").len(), 63);
        let mut taken = BTreeSet::new();
        let names: Vec<String> = (0..3).map(|_| unique("world".into(), &mut taken)).collect();
        assert_eq!(names, ["world", "world-2", "world-3"]);
        assert_eq!(unique("a".repeat(63), &mut ["a".repeat(63)].into()).len(), 63);
    }

    #[test]
    fn a_budget_argument_names_what_is_wrong() {
        let b = parse_budget("memory=16Gi, cpu=1500m,servers=10").unwrap();
        assert_eq!((b[&Resource::Memory], b[&Resource::Cpu], b[&Resource::Servers]), (16384, 150, 10));
        assert!(parse_budget("ram=1Gi").unwrap_err().contains("\"ram\" is not a resource"));
        assert!(parse_budget("memory=lots").unwrap_err().starts_with("memory:"));
        assert!(parse_budget("servers").unwrap_err().contains("expected resource=value"));
    }

    /// One box per owner, offering the eggs found, in the nodes' locations, with a budget that is
    /// the sum; every server adopts its panel server and describes it as it runs.
    #[test]
    fn each_owner_gets_a_box_that_describes_what_runs() {
        let mut versioned = server("2", "7", "Creative");
        versioned.1.environment.insert("VERSION".into(), "1.21".into());
        versioned.1.image = "java:17".into();
        versioned.1.description = " Built by hand ".into();
        versioned.0.node = "2".into();
        let plan = plan(&view(vec![server("1", "7", "Survival"), versioned, server("3", "8", "Survival")]), &options())
            .unwrap();
        assert_eq!(plan.boxes.len(), 2);
        let ann = &plan.boxes[0];
        assert_eq!(ann.gbox.metadata.namespace.as_deref(), Some("customer-ann"));
        assert!(ann.namespace.is_some());
        let spec = &ann.gbox.spec;
        assert_eq!(spec.owner.panel_user_id.as_deref(), Some("7"));
        assert_eq!(spec.owner.last_name, "ann", "a blank name falls back to the e-mail's local part");
        assert_eq!(spec.eggs, vec![EggOffer { name: "paper-minecraft".into(), nest: Some(1.into()), egg: 3.into() }]);
        assert_eq!(spec.locations, vec![4.into(), 5.into()]);
        assert_eq!((spec.budget.memory.0.as_str(), spec.budget.cpu.0.as_str(), spec.budget.servers), ("2Gi", "2", 2));
        let creative = &ann.servers[1].server.spec;
        assert_eq!(creative.environment, BTreeMap::from([("VERSION".to_string(), "1.21".to_string())]));
        assert_eq!(creative.image.as_deref(), Some("java:17"));
        assert_eq!(creative.description.as_deref(), Some("Built by hand"));
        assert_eq!(creative.startup, None, "the egg's startup");
        assert!(!spec.tenant_may.startup, "no server runs a command of its own");
        let mut own = server("4", "7", "Modded");
        own.1.startup = "java -jar modded.jar".into();
        let modded = super::plan(&view(vec![own]), &options()).unwrap();
        let b = &modded.boxes[0];
        assert_eq!(b.servers[0].server.spec.startup.as_deref(), Some("java -jar modded.jar"));
        assert!(b.gbox.spec.tenant_may.startup, "the box lets the server keep its own command");
        assert_eq!(creative.adopt, Some(Adopt { id: Some("2".into()), external_id: None }));
        for s in &ann.servers {
            assert_eq!(s.changes, vec!["external id: none → the GameServer's UID".to_string()], "{}", s.panel_id);
        }
        assert_eq!(plan.boxes[1].gbox.metadata.name.as_deref(), Some("ben"));
        assert!(plan.boxes.iter().all(|b| b.gbox.spec.adopt_from.is_empty()), "each box adopts its owner's");
        // One box for both owners: it may adopt ben's servers, which are given to ann.
        let one = super::plan(
            &view(vec![server("1", "7", "A"), server("3", "8", "B")]),
            &Options { box_owner: Some("7".into()), ..options() },
        )
        .unwrap();
        assert_eq!(one.boxes[0].gbox.spec.adopt_from, vec!["8".to_string()]);
        assert_eq!(one.boxes[0].servers[1].changes[1], "owner: panel user 8 → 7");
    }

    /// What the box cannot say as it is, adoption changes: the dry run lists it, field by field.
    #[test]
    fn what_adoption_changes_is_listed() {
        let mut swapped = server("1", "7", "Odd");
        swapped.0.limits.swap_mib = 256;
        swapped.0.features = FeatureLimits { databases: None, allocations: None, backups: Some(1) };
        swapped.1.image = "someone/else:1".into();
        swapped.0.image = "someone/else:1".into();
        let plan = plan(
            &view(vec![swapped, server("2", "7", "A"), server("3", "7", "B"), server("4", "8", "C")]),
            &Options {
                box_owner: Some("7".into()),
                owners: ["7".to_string()].into(),
                budget: [(Resource::Memory, 8192)].into(),
                namespace: Some("shop".into()),
                ..options()
            },
        )
        .unwrap();
        assert_eq!(plan.boxes.len(), 1);
        let b = &plan.boxes[0];
        assert!(b.namespace.is_none());
        assert_eq!(b.gbox.spec.adopt_from, Vec::<String>::new(), "--owner 7: only ann's servers");
        assert_eq!((b.gbox.spec.budget.memory.0.as_str(), b.gbox.spec.budget.disk.0.as_str()), ("8Gi", "15Gi"));
        assert_eq!(b.gbox.spec.per_server.swap.0, "0", "the swap most servers have");
        let odd = &b.servers[0];
        assert_eq!(
            odd.changes,
            [
                "external id: none → the GameServer's UID",
                "limits.swap: 256 → 0",
                "feature_limits.databases: unlimited → 0",
                "feature_limits.allocations: unlimited → 1",
                "image: \"someone/else:1\" → \"java:21\" (not an image of egg \"Paper (Minecraft)\")",
            ]
        );
        let dry = dry_run(&plan);
        assert!(dry.contains("GameServer odd adopts panel server 1: 5 change(s)"), "{dry}");
    }

    #[test]
    fn a_server_without_limits_or_egg_is_left_out_and_said_so() {
        let mut unlimited = server("1", "7", "Wild");
        unlimited.0.limits.memory_mib = 0;
        unlimited.0.limits.cpu_percent = 0;
        let mut eggless = server("2", "7", "Lost");
        eggless.0.egg = "99".into();
        let plan = plan(&view(vec![unlimited, eggless, server("3", "8", "Fine")]), &options()).unwrap();
        assert_eq!(plan.boxes.len(), 1, "ann has nothing left to import");
        assert_eq!(plan.skipped.len(), 2);
        assert!(
            plan.skipped[0].contains("panel server 1 \"Wild\"")
                && plan.skipped[0].contains("memory and cpu are unlimited (0)"),
            "{:?}",
            plan.skipped
        );
        assert!(plan.skipped[1].contains("its egg 99 of nest 1 could not be read"), "{:?}", plan.skipped);
        let yaml = manifests(&plan.boxes[0], "a panel").unwrap();
        let check = crate::check::parse("import", &yaml).unwrap();
        assert_eq!(check.len(), 3, "Namespace, GameBox, GameServer");
        for doc in check.iter().filter(|d| d.value["kind"] != "Namespace") {
            assert_eq!(crate::crd::validate::validate(&doc.value, None).map_err(|e| format!("{e:?}")), Ok(()));
        }
    }
}
