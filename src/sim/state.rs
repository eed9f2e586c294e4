//! The simulated panel's data and the rules the real panels enforce on it: validation, unique
//! external ids and usernames, egg variables, `deploy` placement by capacity and port range, the
//! install lifecycle, and the game nodes (Wings) that creates, suspensions and deletes must reach.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::catalog::{Catalog, SeedEgg, SeedNode};
use super::checker::{Checker, normalise};
use super::ids::{self, Kind};
use super::rules;
use crate::crd::Flavor;

/// An error the panel answers with.
#[derive(Debug, Clone, PartialEq)]
pub struct SimError {
    pub status: u16,
    pub entries: Vec<ErrorEntry>,
}

/// One entry of `errors[]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorEntry {
    /// Pterodactyl: the exception class; Wisp: the rule or translation key.
    pub code: String,
    pub detail: String,
    /// Validation only: the dotted input path and the rule.
    pub field: Option<(String, String)>,
}

impl SimError {
    pub fn new(status: u16, code: &str, detail: impl Into<String>) -> Self {
        Self { status, entries: vec![ErrorEntry { code: code.into(), detail: detail.into(), field: None }] }
    }

    /// Route-model binding of a missing id (panel `app/Exceptions/Handler.php`: a
    /// `ModelNotFoundException` is shown with this text).
    pub fn not_found() -> Self {
        Self::new(404, "NotFoundHttpException", "The requested resource could not be found on the server.")
    }

    /// A path the panel has no route for (Laravel's router: "The route … could not be found.").
    pub fn no_route(path: &str) -> Self {
        Self::new(
            404,
            "NotFoundHttpException",
            format!("The route {} could not be found.", path.trim_start_matches('/')),
        )
    }

    /// The key lacks the permission bit the route needs (panel `ApplicationApiRequest::authorize`).
    pub fn unauthorized() -> Self {
        Self::new(403, "AccessDeniedHttpException", "This action is unauthorized.")
    }
}

pub type SimResult<T> = Result<T, SimError>;

#[derive(Debug, Clone)]
pub struct User {
    pub id: u64,
    pub uuid: String,
    pub external_id: Option<String>,
    pub username: Option<String>,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub memory: i64,
    pub swap: i64,
    pub disk: i64,
    pub io: i64,
    pub cpu: i64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Features {
    pub databases: Option<i64>,
    pub allocations: Option<i64>,
    pub backups: Option<i64>,
    /// Wisp only.
    pub backup_megabytes: Option<i64>,
}

/// `servers.status` values (panel `app/Models/Server.php`).
pub mod status {
    pub const INSTALLING: &str = "installing";
    pub const INSTALL_FAILED: &str = "install_failed";
    pub const REINSTALL_FAILED: &str = "reinstall_failed";
    pub const SUSPENDED: &str = "suspended";
}

/// An install Wings runs until it reports back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Install {
    pub succeeds: bool,
    pub reinstall: bool,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub id: u64,
    pub uuid: String,
    pub external_id: Option<String>,
    pub name: String,
    pub description: String,
    pub user: u64,
    pub node: i64,
    pub allocation: u64,
    pub nest: i64,
    pub egg: i64,
    pub image: String,
    pub startup: String,
    pub environment: BTreeMap<String, String>,
    pub limits: Limits,
    pub features: Features,
    pub oom_disabled: bool,
    /// Wisp's per-server outgoing-IP switch (`force_outgoing_ip`, wisp-api.md §5.3); Pterodactyl has
    /// it per egg only, so it stays false there.
    pub force_outgoing_ip: bool,
    /// Pterodactyl's CPU pinning (`limits.threads`, e.g. `0-1,4`), `None` when unpinned.
    pub threads: Option<String>,
    /// `servers.status` as Pterodactyl keeps it: None once installed, `installing`,
    /// `install_failed`, `reinstall_failed` or `suspended` — one column for install and suspension
    /// (panel `app/Models/Server.php`). On Wisp only the install's part (see `wisp_suspended`).
    pub status: Option<&'static str>,
    /// Wisp keeps suspension apart from the install: its server model has a `suspended` flag and
    /// an `installed` number (wisp-api.md §9, from Wisp's admin front-end; INFERRED for this API).
    pub wisp_suspended: bool,
    /// The install in progress, until Wings reports back.
    pub install: Option<Install>,
    pub created_at: String,
    pub updated_at: String,
}

impl Server {
    pub fn suspended(&self, flavor: Flavor) -> bool {
        match flavor {
            Flavor::Pterodactyl | Flavor::Pelican => self.status == Some(status::SUSPENDED),
            Flavor::Wisp => self.wisp_suspended,
        }
    }

    /// Pterodactyl's `isInstalled()`: any status but `installing` and `install_failed` — so a
    /// suspended server or a failed *re*install counts as installed (panel `app/Models/Server.php`).
    pub fn installed(&self) -> bool {
        !matches!(self.status, Some(status::INSTALLING | status::INSTALL_FAILED))
    }
}

#[derive(Debug, Clone)]
pub struct Allocation {
    pub id: u64,
    pub node: i64,
    pub ip: String,
    pub port: u16,
    pub server: Option<u64>,
}

/// How the game nodes (Wings) answer the panel: the simulator's node faults.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wings<'a> {
    /// Nodes that do not answer at all.
    pub down: &'a [i64],
    /// Nodes that answer 404 for every server (they lost their servers' configuration).
    pub lost_servers: &'a [i64],
}

impl Wings<'_> {
    /// The panel asks the node to create a server.
    fn create(&self, node: i64) -> SimResult<()> {
        if self.down.contains(&node) { Err(daemon_unreachable()) } else { Ok(()) }
    }

    /// The panel asks the node something about one of its servers (sync, reinstall, delete).
    fn about_server(&self, node: i64) -> SimResult<()> {
        self.create(node)?;
        if self.lost_servers.contains(&node) {
            // Wings answers 404 `{"error": "The requested resource does not exist on this
            // instance."}` and the panel passes the status through
            // (`app/Exceptions/Http/Connection/DaemonConnectionException.php`).
            let request_id = uuid::Uuid::new_v4();
            return Err(SimError::new(
                404,
                "DaemonConnectionException",
                format!(
                    "An error occurred on the remote host: The requested resource does not exist on this instance.. (request id: {request_id})"
                ),
            ));
        }
        Ok(())
    }
}

/// No answer from a node: 504 (`DaemonConnectionException` without a response).
fn daemon_unreachable() -> SimError {
    SimError::new(
        504,
        "DaemonConnectionException",
        "Could not establish a connection to the machine running this server. Please try again.",
    )
}

/// A create the panel accepted: what tests count to prove the operator never made a server
/// twice, whether or not the panel would have refused the second one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    pub kind: CreatedKind,
    pub id: u64,
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CreatedKind {
    Server,
    User,
}

/// A user's fields as the panel validated them.
struct UserFields {
    email: String,
    username: Option<String>,
    first_name: String,
    last_name: String,
    external_id: Option<String>,
}

/// The whole panel.
pub struct State {
    pub flavor: Flavor,
    pub catalog: Catalog,
    pub users: BTreeMap<u64, User>,
    pub servers: BTreeMap<u64, Server>,
    pub allocations: Vec<Allocation>,
    pub install_delay: Duration,
    /// When each install in progress reports back: (instant, server id).
    installs: BTreeSet<(Instant, u64)>,
    /// Every create the panel accepted (a rolled-back server is not one), in order.
    creates: Vec<Created>,
    /// Whether `external_id` must be unique (Pterodactyl: validation + a unique index on servers,
    /// validation on users, panel `app/Models/Server.php`, `app/Models/User.php`; Wisp: unverified).
    pub unique_external_ids: bool,
    /// Whether a user's e-mail and username must be unique (`unique:users,email`,
    /// `unique:users,username` in panel `app/Models/User.php`).
    pub unique_users: bool,
    /// Pelican only: whether `deploy.tags` filters the nodes, as in v1.0.0-beta38 (read in its
    /// source: `app/Services/Deployment/FindViableNodesService.php`, a node carrying any of the
    /// tags); the beta17 panel the tests run ignores them.
    pub pelican_tags_filter: bool,
    rng: StdRng,
    next_user: u64,
    next_server: u64,
}

/// The ports one `deploy.port_range` entry asks for, as the panel parses it
/// (`app/Services/Deployment/AllocationSelectionService.php::setPorts`): a string of digits is one
/// port; `A-B` with 4–5 digits on each side is a range (`AssignmentService::PORT_RANGE_REGEX`),
/// refused with a 400 beyond 1000 ports, and `B-A` is a range that holds no port (SQL `BETWEEN`);
/// anything else is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortEntry {
    Port(u64),
    Range(u64, u64),
}

impl PortEntry {
    pub fn parse(entry: &str) -> SimResult<Option<Self>> {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if digits(entry) {
            return Ok(entry.parse().ok().map(PortEntry::Port));
        }
        let Some((a, b)) = entry.split_once('-') else { return Ok(None) };
        let ends = |s: &str| digits(s) && (4..=5).contains(&s.len());
        if !(ends(a) && ends(b)) {
            return Ok(None);
        }
        let (a, b): (u64, u64) = (a.parse().unwrap_or(0), b.parse().unwrap_or(0));
        if a.abs_diff(b) > 1000 {
            return Err(SimError::new(
                400,
                "DisplayException",
                "Adding more than 1000 ports in a single range at once is not supported.",
            ));
        }
        Ok(Some(PortEntry::Range(a, b)))
    }

    fn holds(&self, port: u16) -> bool {
        let port = u64::from(port);
        match *self {
            PortEntry::Port(p) => p == port,
            PortEntry::Range(a, b) => a <= port && port <= b,
        }
    }
}

/// A node's `ports` in the seed: `A-B` or `A`.
pub fn parse_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (u16, u16) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}

pub fn now_iso() -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    format!("{}", now.strftime("%Y-%m-%dT%H:%M:%S+00:00"))
}

impl State {
    pub fn new(flavor: Flavor, catalog: Catalog, install_delay: Duration, rng: StdRng) -> Self {
        let mut allocations = Vec::new();
        for node in &catalog.nodes {
            if let Some((a, b)) = parse_range(&node.ports) {
                for port in a..=b {
                    let id = allocations.len() as u64 + 1;
                    allocations.push(Allocation { id, node: node.id, ip: node.ip.clone(), port, server: None });
                }
            }
        }
        Self {
            flavor,
            catalog,
            users: BTreeMap::new(),
            servers: BTreeMap::new(),
            allocations,
            install_delay,
            installs: BTreeSet::new(),
            creates: Vec::new(),
            unique_external_ids: true,
            unique_users: true,
            pelican_tags_filter: false,
            rng,
            next_user: 1,
            next_server: 1,
        }
    }

    /// Every create the panel accepted, in order.
    pub fn creates(&self) -> &[Created] {
        &self.creates
    }

    /// How many servers and users the panel has made.
    pub fn created(&self) -> (u64, u64) {
        let servers = self.creates.iter().filter(|c| c.kind == CreatedKind::Server).count() as u64;
        (servers, self.next_user - 1)
    }

    /// Whether `external_id` is taken by another row (only when the panel enforces uniqueness).
    fn taken<'a>(&self, mut others: impl Iterator<Item = Option<&'a str>>, ext: &str) -> bool {
        self.unique_external_ids && others.any(|o| o == Some(ext))
    }

    /// Lets every install due by `now` report back, as Wings does when its install container
    /// exits (panel `app/Http/Controllers/Api/Remote/Servers/ServerInstallController.php`): the
    /// status becomes null, or `install_failed` / `reinstall_failed`; a server suspended meanwhile
    /// stays `suspended`.
    pub fn tick(&mut self, now: Instant) {
        while let Some(&(at, id)) = self.installs.first()
            && at <= now
        {
            self.installs.pop_first();
            let flavor = self.flavor;
            let Some(server) = self.servers.get_mut(&id) else { continue };
            let Some(install) = server.install.take() else { continue };
            let outcome = match (install.succeeds, install.reinstall) {
                (true, _) => None,
                (false, false) => Some(status::INSTALL_FAILED),
                (false, true) => Some(status::REINSTALL_FAILED),
            };
            if flavor == Flavor::Wisp || server.status != Some(status::SUSPENDED) {
                server.status = outcome;
            }
        }
    }

    /// Starts an install of server `id` that reports back after the install delay.
    fn start_install(&mut self, id: u64, install: Install) {
        let at = Instant::now() + self.install_delay;
        if let Some(server) = self.servers.get_mut(&id) {
            server.status = Some(status::INSTALLING);
            server.install = Some(install);
            self.installs.insert((at, id));
        }
    }

    pub fn egg(&self, nest: Option<i64>, egg: i64) -> Option<&SeedEgg> {
        self.catalog
            .nests
            .iter()
            .filter(|n| nest.is_none_or(|id| n.id == id))
            .flat_map(|n| n.eggs.iter())
            .find(|e| e.id == egg)
    }

    pub fn nest_of(&self, egg: i64) -> Option<i64> {
        self.catalog.nests.iter().find(|n| n.eggs.iter().any(|e| e.id == egg)).map(|n| n.id)
    }

    pub fn server_allocations(&self, server: u64) -> Vec<&Allocation> {
        self.allocations.iter().filter(|a| a.server == Some(server)).collect()
    }

    // ---- users -------------------------------------------------------------------------------

    /// `POST /users`. E-mail and username are unique (`unique:users,…`), and a username must match
    /// `^[a-z0-9]([\w\.-]+)[a-z0-9]$` once lower-cased and is stored lower-cased (panel
    /// `app/Models/User.php` rules and `setUsernameAttribute`, `app/Rules/Username.php`). Wisp
    /// users have no username (wisp-api.md §6, CONFIRMED).
    pub fn create_user(&mut self, body: &Value) -> SimResult<User> {
        let fields = self.check_user(body, None)?;
        let id = self.next_user;
        self.next_user += 1;
        let user = User {
            id,
            uuid: uuid::Uuid::new_v4().to_string(),
            external_id: fields.external_id,
            username: fields.username,
            email: fields.email,
            first_name: fields.first_name,
            last_name: fields.last_name,
            created_at: now_iso(),
        };
        self.creates.push(Created { kind: CreatedKind::User, id, external_id: user.external_id.clone() });
        self.users.insert(id, user.clone());
        Ok(user)
    }

    /// `PATCH /users/{id}`: the create's rules, the user's own e-mail, username and external id
    /// not counted as taken (panel `UpdateUserRequest`, `User::getRulesForUpdate`); an external id
    /// not given is kept.
    pub fn update_user(&mut self, id: u64, body: &Value) -> SimResult<User> {
        let fields = self.check_user(body, Some(id))?;
        let user = self.users.get_mut(&id).ok_or_else(SimError::not_found)?;
        // Only what the request carries is changed (Laravel's `validated()` holds the fields given).
        if body.get("external_id").is_some() {
            user.external_id = fields.external_id;
        }
        user.username = fields.username;
        user.email = fields.email;
        user.first_name = fields.first_name;
        user.last_name = fields.last_name;
        Ok(user.clone())
    }

    /// `DELETE /users/{id}`: refused while the user owns a server (panel
    /// `app/Services/Users/UserDeletionService.php`).
    pub fn delete_user(&mut self, id: u64) -> SimResult<()> {
        if self.servers.values().any(|s| s.user == id) {
            return Err(SimError::new(
                400,
                "DisplayException",
                "Cannot delete a user with active servers attached to their account. Please delete their servers before continuing.",
            ));
        }
        self.users.remove(&id).map(drop).ok_or_else(SimError::not_found)
    }

    /// A user's fields checked as the panel does, `except` being the user updated (its own values
    /// are not taken).
    fn check_user(&self, body: &Value, except: Option<u64>) -> SimResult<UserFields> {
        let body = normalise(body);
        let mut c = Checker::new(&body, self.flavor);
        let others = || self.users.values().filter(|u| Some(u.id) != except);
        let email = c.string("email", true, Some(191));
        if let Some(e) = &email {
            if !e.contains('@') || e.starts_with('@') || e.ends_with('@') {
                c.fail("email", "email", "The email field must be a valid email address.".into());
            } else if self.unique_users && others().any(|u| u.email.eq_ignore_ascii_case(e)) {
                c.fail("email", "unique", "The email has already been taken.".into());
            }
        }
        let username = match self.flavor {
            Flavor::Pterodactyl | Flavor::Pelican => {
                let u = c.string("username", true, Some(191));
                if let Some(u) = &u {
                    let lower = u.to_ascii_lowercase();
                    let ok = lower.len() >= 3
                        && lower.chars().next().is_some_and(|ch| ch.is_ascii_alphanumeric())
                        && lower.chars().last().is_some_and(|ch| ch.is_ascii_alphanumeric())
                        && lower.chars().all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-'));
                    if !ok {
                        c.fail("username", "p_username", "The username must start and end with alpha-numeric characters and contain only letters, numbers, dashes, underscores, and periods.".into());
                    } else if self.unique_users && others().any(|x| x.username.as_deref() == Some(lower.as_str())) {
                        c.fail("username", "unique", "The username has already been taken.".into());
                    }
                }
                u.map(|u| u.to_ascii_lowercase())
            }
            // Wisp users have no username.
            Flavor::Wisp => None,
        };
        // Pelican's users have no names: it ignores them (checked on the beta17 panel).
        let names = self.flavor != Flavor::Pelican;
        let first_name = if names { c.string("first_name", true, Some(191)) } else { None };
        let last_name = if names { c.string("last_name", true, Some(191)) } else { None };
        let external_id = c.string("external_id", false, Some(191));
        if let Some(ext) = &external_id
            && self.taken(others().map(|u| u.external_id.as_deref()), ext)
        {
            c.fail("external_id", "unique", "The external id has already been taken.".into());
        }
        c.finish()?;
        Ok(UserFields {
            email: email.unwrap_or_default(),
            username,
            first_name: first_name.unwrap_or_default(),
            last_name: last_name.unwrap_or_default(),
            external_id,
        })
    }

    // ---- servers -----------------------------------------------------------------------------

    /// Memory, swap, disk, io and cpu: required integers on Pterodactyl. Wisp takes `null` (its
    /// module sends a product field left blank as null since 2026-06) and, with no server template attached,
    /// "restores the legacy 0 default" (wisp-gg/whmcs `wisp.php` l.722-724): 0, unlimited; io 500.
    /// INFERRED: templates are not modelled, and a missing key is read as null.
    fn check_limits(&self, c: &mut Checker, prefix: &str) -> Limits {
        let p = |f: &str| if prefix.is_empty() { f.to_string() } else { format!("{prefix}.{f}") };
        let required = self.flavor == Flavor::Pterodactyl;
        Limits {
            memory: c.integer(&p("memory"), required, Some(0), None).unwrap_or_default(),
            swap: c.integer(&p("swap"), required, Some(-1), None).unwrap_or_default(),
            disk: c.integer(&p("disk"), required, Some(0), None).unwrap_or_default(),
            io: c.integer(&p("io"), required, Some(10), Some(1000)).unwrap_or(500),
            cpu: c.integer(&p("cpu"), required, Some(0), None).unwrap_or_default(),
        }
    }

    /// `threads` (`nullable|regex:/^[0-9-,]+$/`): `None` when the field is not sent, `Some(None)`
    /// when it is null.
    fn check_threads(&self, c: &mut Checker, field: &str) -> Option<Option<String>> {
        if !c.has_key(field) {
            return None;
        }
        match c.get(field).cloned().unwrap_or(Value::Null) {
            Value::Null => Some(None),
            Value::String(t) if !t.is_empty() && t.chars().all(|ch| ch.is_ascii_digit() || ch == '-' || ch == ',') => {
                Some(Some(t))
            }
            _ => {
                c.fail(field, "regex", format!("The {field} format is invalid."));
                None
            }
        }
    }

    /// `allocation.default` and `allocation.additional.*` of a create without `deploy`: ids naming
    /// allocations no server holds (`exists:allocations,id` where `server_id` is null). The default
    /// first. Wisp's module sends the additional ones as strings (`strval`, `wisp.php` l.934), digits
    /// under v1 and `alloc_01kt…` under v2; either form is taken.
    fn check_allocations(&self, c: &mut Checker) -> Vec<u64> {
        let free = |id: u64| self.allocations.iter().any(|a| a.id == id && a.server.is_none());
        let mut named = Vec::new();
        if let Some(default) = c.id("allocation.default", Kind::Allocation) {
            if free(default) {
                named.push(default);
            } else {
                c.fail("allocation.default", "exists", "The selected allocation.default is invalid.".into());
            }
        }
        let additional = c.get("allocation.additional").and_then(Value::as_array).cloned().unwrap_or_default();
        for (i, a) in additional.iter().enumerate() {
            let field = format!("allocation.additional.{i}");
            let id = match a {
                Value::String(text) => ids::parse(Kind::Allocation, text),
                other => other.as_u64(),
            };
            match id {
                Some(id) if free(id) && !named.contains(&id) => named.push(id),
                Some(_) => c.fail(&field, "exists", format!("The selected {field} is invalid.")),
                None => c.fail(&field, "integer", format!("The {field} field must be an integer.")),
            }
        }
        named
    }

    fn check_features(&self, c: &mut Checker) -> Features {
        c.required("feature_limits");
        c.present("feature_limits.databases");
        let databases = c.integer("feature_limits.databases", false, Some(0), None);
        let allocations = c.integer("feature_limits.allocations", false, Some(0), None);
        match self.flavor {
            Flavor::Pterodactyl | Flavor::Pelican => {
                c.present("feature_limits.backups");
                let backups = c.integer("feature_limits.backups", false, Some(0), None);
                Features { databases, allocations, backups: Some(backups.unwrap_or(0)), backup_megabytes: None }
            }
            Flavor::Wisp => Features {
                databases,
                allocations,
                backups: c.integer("feature_limits.backup_count_limit", false, Some(0), None),
                backup_megabytes: c.integer("feature_limits.backup_megabytes_limit", false, Some(0), None),
            },
        }
    }

    /// Validates `environment` against every variable of the egg; returns the stored values.
    /// Pterodactyl stores an absent variable as `""` (it applies no defaults). Wisp fills it with
    /// the egg's default: its module stopped sending the variables a product leaves unset in
    /// 2026-06 (wisp-api.md §5.3, INFERRED), and a variable left null keeps null's meaning.
    fn check_environment(&self, c: &mut Checker, egg: &SeedEgg) -> BTreeMap<String, String> {
        let env = c.get("environment").and_then(Value::as_object).cloned().unwrap_or_default();
        let mut stored = BTreeMap::new();
        for var in &egg.variables {
            let value = match env.get(&var.env_variable) {
                None if self.flavor == Flavor::Wisp => Some(var.default_value.clone()).filter(|d| !d.is_empty()),
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => Some(other.to_string()),
            };
            if let Err((rule, message)) = rules::check(&var.name, value.as_deref(), &var.rules) {
                c.fail(&format!("environment.{}", var.env_variable), &rule, message);
            }
            stored.insert(var.env_variable.clone(), value.unwrap_or_default());
        }
        stored
    }

    /// `POST /servers`: validation (422), placement (400), egg variables (422), then the row, then
    /// Wings. If the node does not answer, the panel deletes the server again and returns the
    /// error (panel `app/Services/Servers/ServerCreationService.php`).
    pub fn create_server(&mut self, raw: &Value, wings: Wings, install_fails: bool) -> SimResult<Server> {
        let body = normalise(raw);
        let mut c = Checker::new(&body, self.flavor);
        let name = c.string("name", true, Some(191));
        let description = c.string("description", false, None).unwrap_or_default();
        let external_id = c.string("external_id", false, Some(191));
        if let Some(ext) = &external_id
            && self.taken(self.servers.values().map(|s| s.external_id.as_deref()), ext)
        {
            c.fail("external_id", "unique", "The external id has already been taken.".into());
        }
        let user = c.id("user", Kind::User);
        if let Some(u) = user
            && !self.users.contains_key(&u)
        {
            c.fail("user", "exists", "The selected user is invalid.".into());
        }
        let nest = match self.flavor {
            // INFERRED: every Wisp client sends it.
            Flavor::Wisp => c.id("nest", Kind::Nest).map(|n| n as i64),
            Flavor::Pterodactyl | Flavor::Pelican => None,
        };
        let egg_id = c.id("egg", Kind::Egg).map(|e| e as i64);
        let egg = egg_id.and_then(|e| self.egg(nest, e)).cloned();
        if egg_id.is_some() && egg.is_none() {
            c.fail("egg", "exists", "The selected egg is invalid.".into());
        }
        let image = c.string("docker_image", true, Some(191));
        let startup = c.string("startup", true, None);
        if !body.as_object().is_some_and(|m| m.contains_key("environment")) {
            c.fail("environment", "present", "The environment field must be present.".into());
        }
        c.required("limits");
        let limits = self.check_limits(&mut c, "limits");
        let features = self.check_features(&mut c);
        let oom_disabled = c.boolean("oom_disabled").unwrap_or(self.flavor == Flavor::Pterodactyl);
        let force_outgoing_ip = match self.flavor {
            Flavor::Wisp => c.boolean("force_outgoing_ip").unwrap_or(false),
            Flavor::Pterodactyl | Flavor::Pelican => false,
        };
        let threads = self.check_threads(&mut c, "limits.threads").flatten();
        let skip_scripts = c.boolean("skip_scripts").unwrap_or(false);
        let deploy = c.get("deploy").cloned();
        let mut locations = Vec::new();
        let mut tags: Vec<String> = Vec::new();
        let mut entries = Vec::new();
        let mut explicit = Vec::new();
        if deploy.is_some() {
            // Pelican: `tags` and `locations` must both be present (`locations` deprecated, sent
            // empty), and beta17 does not filter by the tags: any node with room will do
            // (../shared/realpelican/README.md, checked on the panel).
            if self.flavor == Flavor::Pelican {
                c.present("deploy.tags");
                tags = c
                    .get("deploy.tags")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect();
            }
            c.present("deploy.locations");
            for (i, l) in
                c.get("deploy.locations").and_then(Value::as_array).cloned().unwrap_or_default().iter().enumerate()
            {
                let id = match l {
                    Value::String(text) => ids::parse(Kind::Location, text).map(|id| id as i64),
                    other => other.as_i64(),
                };
                match id {
                    Some(id) if id >= 1 => locations.push(id),
                    _ => c.fail(
                        &format!("deploy.locations.{i}"),
                        "min",
                        format!("The deploy.locations.{i} field must be at least 1."),
                    ),
                }
            }
            if c.get("deploy.dedicated_ip").is_none() {
                c.fail(
                    "deploy.dedicated_ip",
                    "required_with",
                    "The deploy.dedicated ip field is required when deploy is present.".into(),
                );
            }
            c.present("deploy.port_range");
            entries = c
                .get("deploy.port_range")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
        } else {
            // Without `deploy`, the allocations are named: `allocation.default` (required) and
            // `allocation.additional.*`, each an allocation of no server (panel
            // `app/Http/Requests/Api/Application/Servers/StoreServerRequest.php::withValidator`).
            explicit = self.check_allocations(&mut c);
        }
        c.finish()?;
        // Placement (400s), then egg variables (422), as the panel orders them. Named allocations
        // are taken as they are: the panel checks a node's room only when it places a server
        // (`app/Services/Servers/ServerCreationService.php`).
        let (node, allocation) = match explicit.first() {
            Some(&default) => {
                let node = self.allocations.iter().find(|a| a.id == default).map_or(0, |a| a.node);
                (node, default)
            }
            None => {
                let mut ports = Vec::new();
                for entry in &entries {
                    ports.extend(PortEntry::parse(entry)?);
                }
                self.deploy(&locations, &tags, &ports, &limits)?
            }
        };
        let Some(egg) = egg else { return Err(SimError::not_found()) };
        let mut c = Checker::new(&body, self.flavor);
        let environment = self.check_environment(&mut c, &egg);
        c.finish()?;

        let id = self.next_server;
        self.next_server += 1;
        let now = now_iso();
        let server = Server {
            id,
            uuid: uuid::Uuid::new_v4().to_string(),
            external_id,
            name: name.unwrap_or_default(),
            description,
            user: user.unwrap_or_default(),
            node,
            allocation,
            nest: self.nest_of(egg.id).unwrap_or_default(),
            egg: egg.id,
            image: image.unwrap_or_default(),
            startup: startup.unwrap_or_default(),
            environment,
            limits,
            features,
            oom_disabled,
            force_outgoing_ip,
            threads,
            status: Some(status::INSTALLING),
            wisp_suspended: false,
            install: None,
            created_at: now.clone(),
            updated_at: now,
        };
        // The node is asked only once the row exists; its failure deletes the row again.
        wings.create(node)?;
        let assigned = if explicit.is_empty() { vec![allocation] } else { explicit };
        for a in self.allocations.iter_mut().filter(|a| assigned.contains(&a.id)) {
            a.server = Some(id);
        }
        self.creates.push(Created { kind: CreatedKind::Server, id, external_id: server.external_id.clone() });
        self.servers.insert(id, server);
        // With `skip_scripts` Wings reports the install done at once (wings `server/install.go`).
        let install = Install { succeeds: !install_fails, reinstall: false };
        if skip_scripts && install.succeeds {
            self.finish_now(id);
        } else {
            self.start_install(id, install);
        }
        self.servers.get(&id).cloned().ok_or_else(SimError::not_found)
    }

    fn finish_now(&mut self, id: u64) {
        if let Some(server) = self.servers.get_mut(&id) {
            server.status = None;
        }
    }

    /// The panel's `deploy`: a public node in the locations with room for memory and disk (Wisp
    /// also cpu), then one random free allocation on a viable node among the asked ports (panel
    /// `app/Services/Deployment/{FindViableNodesService,AllocationSelectionService}.php`; the
    /// entries of `port_range` are OR-ed, none means any port).
    fn deploy(
        &mut self,
        locations: &[i64],
        tags: &[String],
        ports: &[PortEntry],
        limits: &Limits,
    ) -> SimResult<(i64, u64)> {
        let mut viable = self.nodes_with_room(locations, limits);
        if self.flavor == Flavor::Pelican && self.pelican_tags_filter && !tags.is_empty() {
            let tagged =
                |id: &i64| self.catalog.nodes.iter().any(|n| n.id == *id && n.tags.iter().any(|t| tags.contains(t)));
            viable.retain(tagged);
        }
        if viable.is_empty() {
            return Err(self.deploy_error(true));
        }
        let free: Vec<u64> = self
            .allocations
            .iter()
            .filter(|a| a.server.is_none() && viable.contains(&a.node))
            .filter(|a| ports.is_empty() || ports.iter().any(|p| p.holds(a.port)))
            .map(|a| a.id)
            .collect();
        let Some(&allocation) = free.choose(&mut self.rng) else {
            return Err(self.deploy_error(false));
        };
        let node = self.allocations.iter().find(|a| a.id == allocation).map(|a| a.node).unwrap_or_default();
        Ok((node, allocation))
    }

    /// The public nodes in `locations` (any, when empty) with room for `limits`: memory and disk
    /// within their overallocation, and on Wisp cpu too (what `deploy` and Wisp's
    /// `eligible-nodes` pick from). Pterodactyl's rule is `FindViableNodesService` (panel
    /// `app/Services/Deployment/FindViableNodesService.php`: the sums of the node's servers' limits
    /// plus the new server's, against `memory * (1 + memory_overallocate / 100)`, the same for disk);
    /// a build update (`app/Services/Servers/BuildModificationService.php`) checks no node room, and
    /// neither does this simulator's.
    pub fn nodes_with_room(&self, locations: &[i64], limits: &Limits) -> Vec<i64> {
        let fits = |node: &SeedNode, used: &Limits| {
            let room = |cap: u64, over: i64| cap as f64 * (1.0 + over as f64 / 100.0);
            (used.memory + limits.memory) as f64 <= room(node.memory, node.memory_overallocate)
                && (used.disk + limits.disk) as f64 <= room(node.disk, node.disk_overallocate)
                && (self.flavor != Flavor::Wisp || (used.cpu + limits.cpu) as u64 <= node.cpu)
        };
        self.catalog
            .nodes
            .iter()
            .filter(|n| n.public && (locations.is_empty() || locations.contains(&n.location)))
            .filter(|n| {
                let used = self.servers.values().filter(|s| s.node == n.id).fold(Limits::default(), |acc, s| Limits {
                    memory: acc.memory + s.limits.memory,
                    disk: acc.disk + s.limits.disk,
                    cpu: acc.cpu + s.limits.cpu,
                    ..acc
                });
                fits(n, &used)
            })
            .map(|n| n.id)
            .collect()
    }

    fn deploy_error(&self, no_node: bool) -> SimError {
        let (ptero, wisp, detail) = if no_node {
            (
                "NoViableNodeException",
                "admin.servers.deployment.no_viable_nodes",
                "No nodes satisfying the requirements specified for automatic deployment could be found.",
            )
        } else {
            (
                "NoViableAllocationException",
                "admin.servers.deployment.no_viable_allocations",
                "No allocations satisfying the requirements for automatic deployment were found.",
            )
        };
        SimError::new(400, if self.flavor == Flavor::Wisp { wisp } else { ptero }, detail)
    }

    pub fn server_mut(&mut self, id: u64) -> SimResult<&mut Server> {
        self.servers.get_mut(&id).ok_or_else(SimError::not_found)
    }

    pub fn update_details(&mut self, id: u64, raw: &Value) -> SimResult<Server> {
        let body = normalise(raw);
        let mut c = Checker::new(&body, self.flavor);
        let name = c.string("name", true, Some(191));
        let user = c.id("user", Kind::User);
        if let Some(u) = user
            && !self.users.contains_key(&u)
        {
            c.fail("user", "exists", "The selected user is invalid.".into());
        }
        let external_id = c.string("external_id", false, Some(191));
        if let Some(ext) = &external_id
            && self.taken(self.servers.values().filter(|s| s.id != id).map(|s| s.external_id.as_deref()), ext)
        {
            c.fail("external_id", "unique", "The external id has already been taken.".into());
        }
        let description = c.string("description", false, None);
        self.server_mut(id)?;
        c.finish()?;
        let server = self.server_mut(id)?;
        // A full replace: an omitted external id is cleared, an omitted description emptied.
        server.name = name.unwrap_or_default();
        server.user = user.unwrap_or_default();
        server.external_id = external_id;
        server.description = description.unwrap_or_default();
        server.updated_at = now_iso();
        Ok(server.clone())
    }

    /// `add_allocations` / `remove_allocations` of a build (panel
    /// `app/Services/Servers/BuildModificationService.php`, `processAllocations`): an added id is
    /// taken only when no server holds it and it is on the server's node (others are skipped
    /// silently); removing the primary needs another of the server's allocations to take over, else
    /// a 400. `feature_limits.allocations` is not enforced here.
    fn assign_allocations(&mut self, id: u64, primary: u64, add: &[u64], remove: &[u64]) -> SimResult<()> {
        let node = self.servers.get(&id).map(|s| s.node).unwrap_or_default();
        for a in self.allocations.iter_mut() {
            if add.contains(&a.id) && a.server.is_none() && a.node == node {
                a.server = Some(id);
            }
        }
        if remove.contains(&primary) || self.servers.get(&id).is_some_and(|s| remove.contains(&s.allocation)) {
            let fallback = self.allocations.iter().any(|a| a.server == Some(id) && !remove.contains(&a.id));
            if !fallback {
                return Err(SimError::new(
                    400,
                    "DisplayException",
                    "You are attempting to delete the default allocation for this server but there is no fallback allocation to use.",
                ));
            }
        }
        for a in self.allocations.iter_mut() {
            if remove.contains(&a.id) && a.server == Some(id) {
                a.server = None;
            }
        }
        Ok(())
    }

    /// `PATCH /servers/{id}/build`. The panel asks Wings to sync afterwards but only logs its
    /// failure (panel `app/Services/Servers/BuildModificationService.php`): a node that is down
    /// does not fail the update.
    pub fn update_build(&mut self, id: u64, raw: &Value) -> SimResult<Server> {
        let body = normalise(raw);
        self.server_mut(id)?;
        let mut c = Checker::new(&body, self.flavor);
        let allocation = c.id("allocation", Kind::Allocation);
        let limits = match (self.flavor, c.get("limits").is_some()) {
            (Flavor::Pterodactyl | Flavor::Pelican, true) => self.check_limits(&mut c, "limits"),
            _ => self.check_limits(&mut c, ""),
        };
        let features = self.check_features(&mut c);
        let oom = c.boolean("oom_disabled");
        let outgoing = if self.flavor == Flavor::Wisp { c.boolean("force_outgoing_ip") } else { None };
        // Only a field that is sent changes (panel `BuildModificationService`: `Arr::only`).
        let threads = match (self.flavor, c.get("limits").is_some()) {
            (Flavor::Pterodactyl | Flavor::Pelican, true) => self.check_threads(&mut c, "limits.threads"),
            (Flavor::Pterodactyl | Flavor::Pelican, false) => self.check_threads(&mut c, "threads"),
            (Flavor::Wisp, _) => None,
        };
        let ids_of = |c: &mut Checker, field: &str| -> Vec<u64> {
            let items = c.get(field).and_then(Value::as_array).cloned().unwrap_or_default();
            items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    let id = match v {
                        Value::Number(n) => n.as_u64(),
                        Value::String(s) => ids::parse(Kind::Allocation, s),
                        _ => None,
                    };
                    if id.is_none() {
                        c.fail(
                            &format!("{field}.{i}"),
                            "integer",
                            format!("The {field}.{i} field must be an integer."),
                        );
                    }
                    id
                })
                .collect()
        };
        let (add, remove) = (ids_of(&mut c, "add_allocations"), ids_of(&mut c, "remove_allocations"));
        c.finish()?;
        let allocation = allocation.unwrap_or_default();
        self.assign_allocations(id, allocation, &add, &remove)?;
        if !self.allocations.iter().any(|a| a.id == allocation && a.server == Some(id)) {
            return Err(SimError::new(
                400,
                "DisplayException",
                "The requested default allocation is not currently assigned to this server.",
            ));
        }
        let flavor = self.flavor;
        let server = self.server_mut(id)?;
        server.allocation = allocation;
        server.limits = limits;
        // Pterodactyl stores an omitted `allocations` as null and a null `backups` as 0.
        server.features = features;
        if flavor == Flavor::Pterodactyl && server.features.backups.is_none() {
            server.features.backups = Some(0);
        }
        if let Some(oom) = oom {
            server.oom_disabled = oom;
        }
        if let Some(outgoing) = outgoing {
            server.force_outgoing_ip = outgoing;
        }
        if let Some(threads) = threads {
            server.threads = threads;
        }
        server.updated_at = now_iso();
        Ok(server.clone())
    }

    /// Wisp's `PATCH /servers/{id}/server-template` `{server_template: string|null, resync: bool}`
    /// (wisp-gg/whmcs `wisp_ChangePackage`, 2026-06): links the server to a server template, or
    /// unlinks it. INFERRED: templates are not modelled, so any identifier is taken and nothing
    /// is inherited from it; the body's types are checked.
    pub fn link_template(&mut self, id: u64, raw: &Value) -> SimResult<Server> {
        let body = normalise(raw);
        self.server_mut(id)?;
        let mut c = Checker::new(&body, self.flavor);
        if !c.has_key("server_template") {
            c.fail("server_template", "present", "The server template field must be present.".into());
        }
        c.string("server_template", false, Some(191));
        c.boolean("resync");
        c.finish()?;
        let server = self.server_mut(id)?;
        server.updated_at = now_iso();
        Ok(server.clone())
    }

    /// `PATCH /servers/{id}/startup` (no Wings call). Wisp's module also sends `pack` (its id or
    /// null; wisp-gg/whmcs `wisp_ChangePackage`): accepted and ignored, as packs are not modelled.
    pub fn update_startup(&mut self, id: u64, raw: &Value) -> SimResult<Server> {
        let body = normalise(raw);
        self.server_mut(id)?;
        let mut c = Checker::new(&body, self.flavor);
        let startup = c.string("startup", true, None);
        if !body.as_object().is_some_and(|m| m.contains_key("environment")) {
            c.fail("environment", "present", "The environment field must be present.".into());
        }
        let egg_id = c.id("egg", Kind::Egg).map(|e| e as i64);
        let egg = egg_id.and_then(|e| self.egg(None, e)).cloned();
        if egg_id.is_some() && egg.is_none() {
            c.fail("egg", "exists", "The selected egg is invalid.".into());
        }
        let image = c.string("image", true, Some(191));
        if self.flavor == Flavor::Pterodactyl {
            c.present("skip_scripts");
        }
        let env_given = c.get("environment").and_then(Value::as_object).is_some_and(|m| !m.is_empty());
        // An empty environment leaves the variables as they are; a non-empty one is validated
        // against every variable and blanks the ones it omits.
        let environment = match (&egg, env_given) {
            (Some(egg), true) => Some(self.check_environment(&mut c, egg)),
            _ => None,
        };
        c.finish()?;
        let nest = egg.as_ref().and_then(|e| self.nest_of(e.id));
        let server = self.server_mut(id)?;
        server.startup = startup.unwrap_or_default();
        server.image = image.unwrap_or_default();
        if let Some(egg) = egg {
            server.egg = egg.id;
            server.nest = nest.unwrap_or(server.nest);
        }
        if let Some(env) = environment {
            server.environment = env;
        }
        server.updated_at = now_iso();
        Ok(server.clone())
    }

    /// Suspends (or unsuspends) a server. Pterodactyl: a no-op when already so; otherwise the
    /// status becomes `suspended` (or null — whatever the install was doing), then Wings must
    /// sync, and if it cannot the status is put back and the error returned (panel
    /// `app/Services/Servers/SuspensionService.php`). Wisp keeps its flag apart (INFERRED).
    pub fn suspend(&mut self, id: u64, suspend: bool, wings: Wings) -> SimResult<()> {
        let flavor = self.flavor;
        let server = self.server_mut(id)?;
        if server.suspended(flavor) == suspend {
            return Ok(());
        }
        wings.about_server(server.node)?;
        match flavor {
            Flavor::Pterodactyl | Flavor::Pelican => server.status = suspend.then_some(status::SUSPENDED),
            Flavor::Wisp => server.wisp_suspended = suspend,
        }
        server.updated_at = now_iso();
        Ok(())
    }

    /// `POST /servers/{id}/reinstall`: the status becomes `installing` and Wings reinstalls; it
    /// ends null or `reinstall_failed` — a suspended server ends unsuspended (panel
    /// `app/Services/Servers/ReinstallServerService.php`, `ServerInstallController.php`).
    pub fn reinstall(&mut self, id: u64, wings: Wings, fails: bool) -> SimResult<()> {
        let node = self.server_mut(id)?.node;
        wings.about_server(node)?;
        if let Some(server) = self.servers.get_mut(&id) {
            server.wisp_suspended = false;
        }
        self.start_install(id, Install { succeeds: !fails, reinstall: true });
        Ok(())
    }

    /// `DELETE /servers/{id}[/force]`: Wings deletes first — its 404 is ignored, any other failure
    /// aborts unless forced — then the row goes and its allocations are freed (panel
    /// `app/Services/Servers/ServerDeletionService.php`).
    pub fn delete_server(&mut self, id: u64, wings: Wings, force: bool) -> SimResult<()> {
        let node = self.server_mut(id)?.node;
        match wings.about_server(node) {
            // Pelican (beta17, checked on the panel) deletes anyway and only logs the node's error.
            Err(e) if !force && e.status != 404 && self.flavor != Flavor::Pelican => return Err(e),
            _ => {}
        }
        self.servers.remove(&id);
        for a in self.allocations.iter_mut().filter(|a| a.server == Some(id)) {
            a.server = None;
        }
        Ok(())
    }
}

/// A JSON object from key-value pairs.
pub fn object(pairs: Vec<(&str, Value)>) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>())
}
