//! The simulated panel's JSON, field for field as the refs give it, per flavor.

use serde_json::{Value, json};

use super::catalog::{SeedEgg, SeedLocation, SeedNest, SeedNode};
use super::ids::{self, Kind};
use super::state::{Allocation, ErrorEntry, Server, SimError, State, User, now_iso, object, status};
use crate::crd::Flavor;

/// How one answer shows objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    pub flavor: Flavor,
    /// Wisp's `application/vnd.wisp.v2+json`: prefixed ULID ids (see `ids`).
    pub v2: bool,
    /// Wisp's `container.installed` as 0/1/2 rather than a bool (INFERRED both).
    pub installed_as_number: bool,
}

impl View {
    pub fn id(&self, kind: Kind, id: u64) -> Value {
        ids::json(kind, id, self.v2)
    }
}

/// An include asked for, as the key may see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    Omitted,
    Shown,
    /// The key cannot read the included resource: `{"object":"null_resource","attributes":null}`
    /// (panel `app/Transformers/Api/Application/BaseTransformer.php::authorize`,
    /// `PterodactylSerializer::null`).
    Denied,
}

/// What an include of a resource the key may not read becomes.
pub fn null_resource() -> Value {
    json!({"object": "null_resource", "attributes": null})
}

pub fn item(kind: &str, attributes: Value) -> Value {
    json!({"object": kind, "attributes": attributes})
}

/// A list page with `meta.pagination` (links carry only `page=`, like the panel's).
pub fn list(items: Vec<Value>, page: u64, per_page: u64, total: u64, base: &str) -> Value {
    let total_pages = total.div_ceil(per_page.max(1)).max(1);
    let mut links = serde_json::Map::new();
    if page > 1 {
        links.insert("previous".into(), json!(format!("{base}?page={}", page - 1)));
    }
    if page < total_pages {
        links.insert("next".into(), json!(format!("{base}?page={}", page + 1)));
    }
    json!({
        "object": "list",
        "data": items,
        "meta": {"pagination": {
            "total": total,
            "count": items.len(),
            "per_page": per_page,
            "current_page": page,
            "total_pages": total_pages,
            "links": links,
        }},
    })
}

/// A list without pagination (`GET /nests/{id}/eggs`).
pub fn plain_list(items: Vec<Value>) -> Value {
    json!({"object": "list", "data": items})
}

pub fn error(flavor: Flavor, e: &SimError) -> Value {
    let entries: Vec<Value> = e.entries.iter().map(|entry| error_entry(flavor, e.status, entry)).collect();
    json!({ "errors": entries })
}

fn error_entry(flavor: Flavor, status: u16, e: &ErrorEntry) -> Value {
    match (flavor, &e.field) {
        (Flavor::Pterodactyl | Flavor::Pelican, Some((field, rule))) => json!({
            "code": e.code, "status": status.to_string(), "detail": e.detail,
            "meta": {"source_field": field, "rule": rule},
        }),
        (Flavor::Pterodactyl | Flavor::Pelican, None) => {
            json!({"code": e.code, "status": status.to_string(), "detail": e.detail})
        }
        // Wisp validation entries: rule as `code`, `source.field`, no `status` and no `meta`.
        (Flavor::Wisp, Some((field, _))) => json!({"code": e.code, "detail": e.detail, "source": {"field": field}}),
        (Flavor::Wisp, None) => json!({"code": e.code, "status": status.to_string(), "detail": e.detail}),
    }
}

pub fn user(view: View, u: &User) -> Value {
    let flavor = view.flavor;
    let mut pairs =
        vec![("id", view.id(Kind::User, u.id)), ("external_id", json!(u.external_id)), ("uuid", json!(u.uuid))];
    if flavor != Flavor::Wisp {
        pairs.push(("username", json!(u.username)));
    }
    pairs.push(("email", json!(u.email)));
    // Pelican's users have no first or last name (beta17's `UserTransformer`, checked on the panel).
    if flavor != Flavor::Pelican {
        pairs.extend([("first_name", json!(u.first_name)), ("last_name", json!(u.last_name))]);
    }
    pairs.extend([("language", json!("en")), ("root_admin", json!(false))]);
    match flavor {
        Flavor::Pterodactyl => pairs.push(("2fa", json!(false))),
        Flavor::Pelican => pairs.extend([("2fa_enabled", json!(false)), ("2fa", json!(false))]),
        Flavor::Wisp => {}
    }
    pairs.extend([("created_at", json!(u.created_at)), ("updated_at", json!(u.created_at))]);
    item("user", object(pairs))
}

pub fn location(view: View, l: &SeedLocation) -> Value {
    let id = view.id(Kind::Location, l.id.unsigned_abs());
    item(
        "location",
        json!({"id": id, "short": l.short, "long": l.long, "updated_at": now_iso(), "created_at": now_iso()}),
    )
}

pub fn node(view: View, n: &SeedNode, state: &State) -> Value {
    let (memory, disk, cpu) = state
        .servers
        .values()
        .filter(|s| s.node == n.id)
        .fold((0, 0, 0), |(m, d, c), s| (m + s.limits.memory, d + s.limits.disk, c + s.limits.cpu));
    let mut node = json!({
        "id": view.id(Kind::Node, n.id.unsigned_abs()), "uuid": format!("00000000-0000-4000-8000-{:012}", n.id), "public": n.public, "name": n.name,
        "description": "", "location_id": view.id(Kind::Location, n.location.unsigned_abs()), "fqdn": n.ip, "scheme": "https", "behind_proxy": false,
        "maintenance_mode": false, "memory": n.memory, "memory_overallocate": n.memory_overallocate,
        "disk": n.disk, "disk_overallocate": n.disk_overallocate, "upload_size": 100,
        "daemon_listen": 8080, "daemon_sftp": 2022, "daemon_base": "/var/lib/pterodactyl/volumes",
        "created_at": now_iso(), "updated_at": now_iso(),
        "allocated_resources": {"memory": memory, "disk": disk},
    });
    // Pelican: `tags` instead of a location, and the node's CPU (beta17's `NodeTransformer`).
    if view.flavor == Flavor::Pelican
        && let Some(fields) = node.as_object_mut()
    {
        fields.remove("location_id");
        fields.insert("tags".into(), json!(n.tags));
        fields.insert("cpu".into(), json!(n.cpu));
        fields.insert("cpu_overallocate".into(), json!(0));
        fields.insert("daemon_sftp_alias".into(), Value::Null);
        fields.insert("daemon_base".into(), json!("/var/lib/pelican/volumes"));
        fields.insert("allocated_resources".into(), json!({"memory": memory, "disk": disk, "cpu": cpu}));
    }
    item("node", node)
}

pub fn nest(view: View, n: &SeedNest) -> Value {
    item(
        "nest",
        json!({
            "id": view.id(Kind::Nest, n.id.unsigned_abs()), "uuid": format!("00000000-0000-4000-9000-{:012}", n.id), "author": "support@pterodactyl.io",
            "name": n.name, "description": "", "created_at": now_iso(), "updated_at": now_iso(),
        }),
    )
}

pub fn egg(view: View, nest: i64, e: &SeedEgg, with_variables: bool) -> Value {
    let flavor = view.flavor;
    let default_image = e.docker_images.first().map(|(_, i)| i.clone()).unwrap_or_default();
    let mut pairs = vec![
        ("id", view.id(Kind::Egg, e.id.unsigned_abs())),
        ("uuid", json!(format!("00000000-0000-4000-a000-{:012}", e.id))),
        ("name", json!(e.name)),
        ("nest", view.id(Kind::Nest, nest.unsigned_abs())),
        ("author", json!("support@pterodactyl.io")),
        ("description", json!("")),
        ("docker_image", json!(default_image)),
    ];
    if flavor == Flavor::Pelican {
        pairs.retain(|(k, _)| *k != "nest"); // no nests on Pelican
    }
    if flavor != Flavor::Wisp {
        let images: serde_json::Map<String, Value> =
            e.docker_images.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        pairs.push(("docker_images", Value::Object(images)));
        pairs.push((
            "config",
            json!({"files": {}, "startup": {}, "stop": "stop", "logs": [], "file_denylist": [], "extends": null}),
        ));
        pairs.push((
            "script",
            json!({"privileged": true, "install": "", "entry": "bash", "container": "alpine", "extends": null}),
        ));
    }
    pairs.extend([("startup", json!(e.startup)), ("created_at", json!(now_iso())), ("updated_at", json!(now_iso()))]);
    if with_variables {
        let vars: Vec<Value> = e
            .variables
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let mut variable = json!({
                    "id": e.id * 100 + i as i64, "egg_id": e.id, "name": v.name, "description": "",
                    "env_variable": v.env_variable, "default_value": v.default_value,
                    "user_viewable": true, "user_editable": true, "rules": rules(flavor, &v.rules),
                    "created_at": "2024-05-07T12:55:55.000000Z", "updated_at": "2024-05-07T12:55:55.000000Z",
                });
                if flavor == Flavor::Pelican {
                    variable["sort"] = json!(i + 1); // the variables' order, new in Pelican
                }
                item("egg_variable", variable)
            })
            .collect();
        pairs.push(("relationships", json!({"variables": {"object": "list", "data": vars}})));
    }
    item("egg", object(pairs))
}

/// An egg variable's rules: `required|string` text, or on Pelican a JSON array of the rules.
fn rules(flavor: Flavor, rules: &str) -> Value {
    match flavor {
        Flavor::Pelican => json!(rules.split('|').filter(|r| !r.is_empty()).collect::<Vec<_>>()),
        _ => json!(rules),
    }
}

pub fn allocation(view: View, a: &Allocation) -> Value {
    item(
        "allocation",
        json!({"id": view.id(Kind::Allocation, a.id), "ip": a.ip, "alias": null, "port": a.port, "notes": null,
               "assigned": a.server.is_some()}),
    )
}

pub fn server(state: &State, s: &Server, view: View, allocations: Include) -> Value {
    let mut environment: serde_json::Map<String, Value> =
        s.environment.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let mut pairs = vec![
        ("id", view.id(Kind::Server, s.id)),
        ("external_id", json!(s.external_id)),
        ("uuid", json!(s.uuid)),
        ("identifier", json!(&s.uuid[..8])),
        ("name", json!(s.name)),
        ("description", json!(s.description)),
    ];
    let mut limits;
    let features;
    let installed;
    match state.flavor {
        Flavor::Pterodactyl | Flavor::Pelican => {
            // `status` is the record; `suspended` and `container.installed` are derived from it
            // (panel `app/Transformers/Api/Application/ServerTransformer.php`).
            pairs.push(("status", json!(s.status)));
            limits = json!({"memory": s.limits.memory, "swap": s.limits.swap, "disk": s.limits.disk, "io": s.limits.io,
                "cpu": s.limits.cpu, "threads": s.threads, "oom_disabled": s.oom_disabled});
            if state.flavor == Flavor::Pelican {
                limits["oom_killer"] = json!(!s.oom_disabled);
            }
            features = json!({"databases": s.features.databases, "allocations": s.features.allocations, "backups": s.features.backups.unwrap_or(0)});
            // Panel-added keys: clients must not take them for egg variables.
            let location = state.catalog.nodes.iter().find(|n| n.id == s.node).map(|n| n.location);
            let short = state.catalog.locations.iter().find(|l| Some(l.id) == location).map(|l| l.short.clone());
            environment.insert("STARTUP".into(), json!(s.startup));
            if state.flavor == Flavor::Pterodactyl {
                environment.insert("P_SERVER_LOCATION".into(), json!(short));
            }
            environment.insert("P_SERVER_UUID".into(), json!(s.uuid));
            environment.insert("P_SERVER_ALLOCATION_LIMIT".into(), json!(s.features.allocations.unwrap_or(0)));
            installed = json!(u8::from(s.installed()));
        }
        Flavor::Wisp => {
            // INFERRED (wisp-api.md §5.2): no `status`; Wisp-only limit names in responses unknown;
            // `installed` a bool as in Pterodactyl 0.7's transformer (true once installed; a failed
            // install reads false), or 0 installing, 1 installed, 2 failed (the admin model's number).
            limits = json!({"memory": s.limits.memory, "swap": s.limits.swap, "disk": s.limits.disk, "io": s.limits.io, "cpu": s.limits.cpu});
            features = json!({"databases": s.features.databases, "allocations": s.features.allocations,
                "backup_megabytes_limit": s.features.backup_megabytes, "backup_count_limit": s.features.backups});
            let phase = match s.status {
                Some(status::INSTALLING) => 0,
                Some(status::INSTALL_FAILED | status::REINSTALL_FAILED) => 2,
                _ => 1,
            };
            installed = if view.installed_as_number { json!(phase) } else { json!(phase == 1) };
        }
    }
    pairs.extend([
        ("suspended", json!(s.suspended(state.flavor))),
        ("limits", limits),
        ("feature_limits", features),
        ("user", view.id(Kind::User, s.user)),
        ("node", view.id(Kind::Node, s.node.unsigned_abs())),
        ("allocation", view.id(Kind::Allocation, s.allocation)),
        ("nest", view.id(Kind::Nest, s.nest.unsigned_abs())),
        ("egg", view.id(Kind::Egg, s.egg.unsigned_abs())),
    ]);
    if state.flavor == Flavor::Pelican {
        pairs.retain(|(k, _)| *k != "nest");
    }
    if state.flavor == Flavor::Wisp {
        // INFERRED: the two switches top level, by the names Wisp's create and build take (and its
        // admin server model shows); the Application API's response names are unknown (§5.2).
        pairs.extend([
            ("pack", Value::Null),
            ("oom_disabled", json!(s.oom_disabled)),
            ("force_outgoing_ip", json!(s.force_outgoing_ip)),
        ]);
    }
    pairs.push((
        "container",
        json!({"startup_command": s.startup, "image": s.image, "installed": installed, "environment": environment}),
    ));
    pairs.extend([("updated_at", json!(s.updated_at)), ("created_at", json!(s.created_at))]);
    match allocations {
        Include::Omitted => {}
        Include::Denied => pairs.push(("relationships", json!({"allocations": null_resource()}))),
        Include::Shown => {
            let allocations: Vec<Value> =
                state.server_allocations(s.id).into_iter().map(|a| allocation(view, a)).collect();
            pairs.push(("relationships", json!({"allocations": {"object": "list", "data": allocations}})));
        }
    }
    item("server", object(pairs))
}
