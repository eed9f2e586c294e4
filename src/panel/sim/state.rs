//! The simulated panel's data and the rules the real panels enforce on it (validation, unique
//! external ids, egg variables, `deploy` placement by capacity and port range, install timing).

use std::collections::BTreeMap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::catalog::{Catalog, SeedEgg, SeedNode};
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

    pub fn not_found() -> Self {
        Self::new(404, "NotFoundHttpException", "The requested resource could not be found on the server.")
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
    pub suspended: bool,
    pub installed_at: Instant,
    pub created_at: String,
    pub updated_at: String,
}

impl Server {
    pub fn installed(&self) -> bool {
        Instant::now() >= self.installed_at
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

/// The whole panel.
pub struct State {
    pub flavor: Flavor,
    pub catalog: Catalog,
    pub users: BTreeMap<u64, User>,
    pub servers: BTreeMap<u64, Server>,
    pub allocations: Vec<Allocation>,
    pub install_delay: Duration,
    rng: StdRng,
    next_user: u64,
    next_server: u64,
}

/// `A-B` or `A` → (A, B).
pub fn parse_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b): (u16, u16) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}

pub fn now_iso() -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    format!("{}", now.strftime("%Y-%m-%dT%H:%M:%S+00:00"))
}

/// The panels trim strings and turn `""` into null, nested values included.
pub fn normalise(v: &Value) -> Value {
    match v {
        Value::String(s) if s.trim().is_empty() => Value::Null,
        Value::String(s) => Value::String(s.trim().to_string()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), normalise(v))).collect()),
        Value::Array(a) => Value::Array(a.iter().map(normalise).collect()),
        other => other.clone(),
    }
}

/// Collects validation errors in the panel's order (one entry per failed rule per field).
pub struct Checker<'a> {
    body: &'a Value,
    flavor: Flavor,
    pub errors: Vec<ErrorEntry>,
}

impl<'a> Checker<'a> {
    pub fn new(body: &'a Value, flavor: Flavor) -> Self {
        Self { body, flavor, errors: Vec::new() }
    }

    pub fn get(&self, path: &str) -> Option<&'a Value> {
        let mut v = self.body;
        for part in path.split('.') {
            v = v.get(part)?;
        }
        (!v.is_null()).then_some(v)
    }

    fn has_key(&self, path: &str) -> bool {
        let (parent, last) = path.rsplit_once('.').map_or(("", path), |(p, l)| (p, l));
        let parent = if parent.is_empty() { Some(self.body) } else { self.get(parent) };
        parent.and_then(Value::as_object).is_some_and(|m| m.contains_key(last))
    }

    pub fn fail(&mut self, field: &str, rule: &str, detail: String) {
        let code = match self.flavor {
            Flavor::Pterodactyl => "ValidationException".to_string(),
            Flavor::Wisp => rule.to_string(),
        };
        self.errors.push(ErrorEntry { code, detail, field: Some((field.into(), rule.into())) });
    }

    pub fn required(&mut self, field: &str) -> Option<&'a Value> {
        let v = self.get(field);
        if v.is_none() {
            self.fail(field, "required", format!("The {field} field is required."));
        }
        v
    }

    pub fn present(&mut self, field: &str) {
        if !self.has_key(field) {
            self.fail(field, "present", format!("The {field} field must be present."));
        }
    }

    pub fn string(&mut self, field: &str, required: bool, max: Option<usize>) -> Option<String> {
        let v = if required { self.required(field)? } else { self.get(field)? };
        let Some(s) = v.as_str() else {
            self.fail(field, "string", format!("The {field} field must be a string."));
            return None;
        };
        if let Some(max) = max
            && s.chars().count() > max
        {
            self.fail(field, "max", format!("The {field} field must not be greater than {max} characters."));
        }
        Some(s.to_string())
    }

    pub fn integer(&mut self, field: &str, required: bool, min: Option<i64>, max: Option<i64>) -> Option<i64> {
        let v = if required { self.required(field)? } else { self.get(field)? };
        let n = match v {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        let Some(n) = n else {
            self.fail(field, "integer", format!("The {field} field must be an integer."));
            return None;
        };
        match (min, max) {
            (Some(lo), Some(hi)) if n < lo || n > hi => {
                self.fail(field, "between", format!("The {field} field must be between {lo} and {hi}."))
            }
            (Some(lo), None) if n < lo => self.fail(field, "min", format!("The {field} field must be at least {lo}.")),
            _ => {}
        }
        Some(n)
    }

    pub fn boolean(&mut self, field: &str) -> Option<bool> {
        let v = self.get(field)?;
        match v {
            Value::Bool(b) => Some(*b),
            Value::Number(n) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => Some(n.as_i64() == Some(1)),
            _ => {
                self.fail(field, "boolean", format!("The {field} field must be true or false."));
                None
            }
        }
    }

    pub fn finish(self) -> SimResult<()> {
        if self.errors.is_empty() { Ok(()) } else { Err(SimError { status: 422, entries: self.errors }) }
    }
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
            rng,
            next_user: 1,
            next_server: 1,
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

    pub fn create_user(&mut self, body: &Value) -> SimResult<User> {
        let body = normalise(body);
        let mut c = Checker::new(&body, self.flavor);
        let email = c.string("email", true, Some(191));
        if let Some(e) = &email {
            if !e.contains('@') || e.starts_with('@') || e.ends_with('@') {
                c.fail("email", "email", "The email field must be a valid email address.".into());
            } else if self.users.values().any(|u| u.email.eq_ignore_ascii_case(e)) {
                c.fail("email", "unique", "The email has already been taken.".into());
            }
        }
        let username = match self.flavor {
            Flavor::Pterodactyl => {
                let u = c.string("username", true, Some(191));
                if let Some(u) = &u {
                    let lower = u.to_ascii_lowercase();
                    let ok = lower.len() >= 3
                        && lower.chars().next().is_some_and(|ch| ch.is_ascii_alphanumeric())
                        && lower.chars().last().is_some_and(|ch| ch.is_ascii_alphanumeric())
                        && lower.chars().all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-'));
                    if !ok {
                        c.fail("username", "p_username", "The username must start and end with alpha-numeric characters and contain only letters, numbers, dashes, underscores, and periods.".into());
                    } else if self.users.values().any(|x| x.username.as_deref() == Some(lower.as_str())) {
                        c.fail("username", "unique", "The username has already been taken.".into());
                    }
                }
                u.map(|u| u.to_ascii_lowercase())
            }
            // Wisp users have no username.
            Flavor::Wisp => None,
        };
        let first_name = c.string("first_name", true, Some(191));
        let last_name = c.string("last_name", true, Some(191));
        let external_id = c.string("external_id", false, Some(191));
        if let Some(ext) = &external_id
            && self.users.values().any(|u| u.external_id.as_deref() == Some(ext))
        {
            c.fail("external_id", "unique", "The external id has already been taken.".into());
        }
        c.finish()?;
        let id = self.next_user;
        self.next_user += 1;
        let user = User {
            id,
            uuid: uuid::Uuid::new_v4().to_string(),
            external_id,
            username,
            email: email.unwrap_or_default(),
            first_name: first_name.unwrap_or_default(),
            last_name: last_name.unwrap_or_default(),
            created_at: now_iso(),
        };
        self.users.insert(id, user.clone());
        Ok(user)
    }

    // ---- servers -----------------------------------------------------------------------------

    fn check_limits(&self, c: &mut Checker, prefix: &str) -> Limits {
        let p = |f: &str| if prefix.is_empty() { f.to_string() } else { format!("{prefix}.{f}") };
        Limits {
            memory: c.integer(&p("memory"), true, Some(0), None).unwrap_or_default(),
            swap: c.integer(&p("swap"), true, Some(-1), None).unwrap_or_default(),
            disk: c.integer(&p("disk"), true, Some(0), None).unwrap_or_default(),
            io: c.integer(&p("io"), true, Some(10), Some(1000)).unwrap_or(500),
            cpu: c.integer(&p("cpu"), true, Some(0), None).unwrap_or_default(),
        }
    }

    fn check_features(&self, c: &mut Checker) -> Features {
        c.required("feature_limits");
        c.present("feature_limits.databases");
        let databases = c.integer("feature_limits.databases", false, Some(0), None);
        let allocations = c.integer("feature_limits.allocations", false, Some(0), None);
        match self.flavor {
            Flavor::Pterodactyl => {
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

    /// Validates `environment` against every variable of the egg; returns the stored values
    /// (absent optional variables are stored as `""`: the panels do not apply defaults).
    fn check_environment(&self, c: &mut Checker, egg: &SeedEgg) -> BTreeMap<String, String> {
        let env = c.get("environment").and_then(Value::as_object).cloned().unwrap_or_default();
        let mut stored = BTreeMap::new();
        for var in &egg.variables {
            let value = env.get(&var.env_variable).and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            });
            if let Err((rule, message)) = rules::check(&var.name, value.as_deref(), &var.rules) {
                c.fail(&format!("environment.{}", var.env_variable), &rule, message);
            }
            stored.insert(var.env_variable.clone(), value.unwrap_or_default());
        }
        stored
    }

    pub fn create_server(&mut self, raw: &Value) -> SimResult<Server> {
        let body = normalise(raw);
        let mut c = Checker::new(&body, self.flavor);
        let name = c.string("name", true, Some(191));
        let description = c.string("description", false, None).unwrap_or_default();
        let external_id = c.string("external_id", false, Some(191));
        if let Some(ext) = &external_id
            && self.servers.values().any(|s| s.external_id.as_deref() == Some(ext))
        {
            c.fail("external_id", "unique", "The external id has already been taken.".into());
        }
        let user = c.integer("user", true, None, None);
        if let Some(u) = user
            && !self.users.contains_key(&(u as u64))
        {
            c.fail("user", "exists", "The selected user is invalid.".into());
        }
        let nest = match self.flavor {
            Flavor::Wisp => c.integer("nest", true, None, None), // INFERRED: every Wisp client sends it
            Flavor::Pterodactyl => None,
        };
        let egg_id = c.integer("egg", true, None, None);
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
        let deploy = c.get("deploy").cloned();
        let mut locations = Vec::new();
        let mut port_range = None;
        if deploy.is_some() {
            c.present("deploy.locations");
            for (i, l) in
                c.get("deploy.locations").and_then(Value::as_array).cloned().unwrap_or_default().iter().enumerate()
            {
                match l.as_i64() {
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
            // Strings that do not parse are silently ignored, like the panel does.
            for r in
                c.get("deploy.port_range").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
            {
                if let Some((a, b)) = parse_range(r) {
                    if b - a > 1000 {
                        return Err(SimError::new(
                            400,
                            "DisplayException",
                            "Adding more than 1000 ports in a single range at once is not supported.",
                        ));
                    }
                    port_range = Some((a, b));
                }
            }
        } else {
            c.fail(
                "deploy",
                "required",
                "This simulator only supports automatic deployment: the deploy field is required.".into(),
            );
        }
        c.finish()?;
        // Placement (400s), then egg variables (422), as the panel orders them.
        let (node, allocation) = self.deploy(&locations, port_range, &limits)?;
        let Some(egg) = egg else { return Err(SimError::not_found()) };
        let mut c = Checker::new(&body, self.flavor);
        let environment = self.check_environment(&mut c, &egg);
        c.finish()?;

        let id = self.next_server;
        self.next_server += 1;
        let uuid = uuid::Uuid::new_v4().to_string();
        if let Some(a) = self.allocations.iter_mut().find(|a| a.id == allocation) {
            a.server = Some(id);
        }
        let now = now_iso();
        let server = Server {
            id,
            uuid,
            external_id,
            name: name.unwrap_or_default(),
            description,
            user: user.unwrap_or_default() as u64,
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
            suspended: false,
            installed_at: Instant::now() + self.install_delay,
            created_at: now.clone(),
            updated_at: now,
        };
        self.servers.insert(id, server.clone());
        Ok(server)
    }

    /// The panel's `deploy`: a public node in the locations with room for memory and disk (Wisp
    /// also cpu), then one random free allocation in the port range on a viable node.
    fn deploy(&mut self, locations: &[i64], range: Option<(u16, u16)>, limits: &Limits) -> SimResult<(i64, u64)> {
        let fits = |node: &SeedNode, used: &Limits| {
            let room = |cap: u64, over: i64| cap as f64 * (1.0 + over as f64 / 100.0);
            (used.memory + limits.memory) as f64 <= room(node.memory, node.memory_overallocate)
                && (used.disk + limits.disk) as f64 <= room(node.disk, node.disk_overallocate)
                && (self.flavor != Flavor::Wisp || (used.cpu + limits.cpu) as u64 <= node.cpu)
        };
        let viable: Vec<i64> = self
            .catalog
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
            .collect();
        if viable.is_empty() {
            return Err(self.deploy_error(true));
        }
        let free: Vec<u64> = self
            .allocations
            .iter()
            .filter(|a| a.server.is_none() && viable.contains(&a.node))
            .filter(|a| range.is_none_or(|(lo, hi)| a.port >= lo && a.port <= hi))
            .map(|a| a.id)
            .collect();
        let Some(&allocation) = free.choose(&mut self.rng) else {
            return Err(self.deploy_error(false));
        };
        let node = self.allocations.iter().find(|a| a.id == allocation).map(|a| a.node).unwrap_or_default();
        Ok((node, allocation))
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
        let user = c.integer("user", true, None, None);
        if let Some(u) = user
            && !self.users.contains_key(&(u as u64))
        {
            c.fail("user", "exists", "The selected user is invalid.".into());
        }
        let external_id = c.string("external_id", false, Some(191));
        if let Some(ext) = &external_id
            && self.servers.values().any(|s| s.id != id && s.external_id.as_deref() == Some(ext))
        {
            c.fail("external_id", "unique", "The external id has already been taken.".into());
        }
        let description = c.string("description", false, None);
        self.server_mut(id)?;
        c.finish()?;
        let server = self.server_mut(id)?;
        // A full replace: an omitted external id is cleared, an omitted description emptied.
        server.name = name.unwrap_or_default();
        server.user = user.unwrap_or_default() as u64;
        server.external_id = external_id;
        server.description = description.unwrap_or_default();
        server.updated_at = now_iso();
        Ok(server.clone())
    }

    pub fn update_build(&mut self, id: u64, raw: &Value) -> SimResult<Server> {
        let body = normalise(raw);
        self.server_mut(id)?;
        let mut c = Checker::new(&body, self.flavor);
        let allocation = c.integer("allocation", true, None, None);
        let limits = match (self.flavor, c.get("limits").is_some()) {
            (Flavor::Pterodactyl, true) => self.check_limits(&mut c, "limits"),
            _ => self.check_limits(&mut c, ""),
        };
        let features = self.check_features(&mut c);
        let oom = c.boolean("oom_disabled");
        c.finish()?;
        let allocation = allocation.unwrap_or_default() as u64;
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
        server.updated_at = now_iso();
        Ok(server.clone())
    }

    pub fn update_startup(&mut self, id: u64, raw: &Value) -> SimResult<Server> {
        let body = normalise(raw);
        self.server_mut(id)?;
        let mut c = Checker::new(&body, self.flavor);
        let startup = c.string("startup", true, None);
        if !body.as_object().is_some_and(|m| m.contains_key("environment")) {
            c.fail("environment", "present", "The environment field must be present.".into());
        }
        let egg_id = c.integer("egg", true, None, None);
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

    pub fn delete_server(&mut self, id: u64) -> SimResult<()> {
        self.servers.remove(&id).ok_or_else(SimError::not_found)?;
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
