//! The application API's routes, once a request has passed authentication and the throttle: model
//! binding (404), the key's permission (403), then the route itself.

use std::collections::BTreeMap;

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::access::SimKey;
use super::ids::{self, Kind};
use super::render::{self, Include, View};
use super::state::{self, SimError, State, Wings};
use super::{Sim, json_response, no_content};
use crate::crd::Flavor;

pub type Query = BTreeMap<String, String>;

/// `page` (1-based) and `per_page` as the panels read them (50 by default, 15 for 0).
pub fn page_params(q: &Query) -> (u64, u64) {
    let page = q.get("page").and_then(|p| p.parse::<u64>().ok()).filter(|p| *p >= 1).unwrap_or(1);
    let per_page = match q.get("per_page").and_then(|p| p.parse::<u64>().ok()) {
        None => 50,
        Some(0) => 15,
        Some(n) => n,
    };
    (page, per_page)
}

/// One request as the routes see it.
pub struct Request<'a> {
    pub method: &'a Method,
    pub segments: &'a [&'a str],
    pub query: &'a Query,
    pub body: &'a Value,
    pub key: &'a SimKey,
    pub view: View,
}

impl Sim {
    pub(super) async fn route(&self, r: Request<'_>) -> Result<Response, SimError> {
        let faults = self.faults.lock().await.clone();
        let wings = Wings { down: &faults.nodes_down, lost_servers: &faults.nodes_lost_servers };
        let install_fails = faults.failing_installs > 0;
        let mut state = self.state.lock().await;
        state.tick(tokio::time::Instant::now());
        let (seg, q, body, view) = (r.segments, r.query, r.body, r.view);
        let m = r.method.as_str();
        // Pelican has no nests and no locations: Laravel's route miss.
        if state.flavor == Flavor::Pelican && matches!(seg.first(), Some(&("nests" | "locations"))) {
            return Err(SimError::no_route(&format!("api/application/{}", seg.join("/"))));
        }
        bound(&state, seg)?;
        if let Some((resource, write)) = super::access::resource_of(m, seg)
            && !r.key.allows(resource, write)
        {
            return Err(SimError::unauthorized());
        }
        let server_id = |s: &str| ids::parse(Kind::Server, s).ok_or_else(SimError::not_found);
        let allocations = match q.get("include").is_some_and(|i| i.split(',').any(|x| x.trim() == "allocations")) {
            false => Include::Omitted,
            true if r.key.allows("allocations", false) => Include::Shown,
            true => Include::Denied,
        };
        let server_json = |state: &State, id: u64, include: Include| {
            state.servers.get(&id).map(|s| render::server(state, s, view, include)).ok_or_else(SimError::not_found)
        };
        Ok(match (m, seg) {
            ("GET", ["users"]) => {
                if let Some(e) = unknown_filter(q, &["email", "uuid", "username", "external_id"]) {
                    return Err(e);
                }
                let mut users: Vec<&state::User> = state.users.values().filter(|u| self.user_matches(u, q)).collect();
                sort(q, &mut users, |u| u.uuid.as_str())?;
                paged(users.into_iter().map(|u| render::user(view, u)).collect(), q, "/api/application/users")
            }
            ("GET", ["users", "external", ext]) => {
                let user = state
                    .users
                    .values()
                    .find(|u| u.external_id.as_deref() == Some(*ext))
                    .ok_or_else(SimError::not_found)?;
                json_response(200, &render::user(view, user))
            }
            ("GET", ["users", uid]) => {
                let user = ids::parse(Kind::User, uid).and_then(|id| state.users.get(&id));
                json_response(200, &render::user(view, user.ok_or_else(SimError::not_found)?))
            }
            ("PATCH", ["users", uid]) => {
                let id = ids::parse(Kind::User, uid).ok_or_else(SimError::not_found)?;
                json_response(200, &render::user(view, &state.update_user(id, body)?))
            }
            ("DELETE", ["users", uid]) => {
                state.delete_user(ids::parse(Kind::User, uid).ok_or_else(SimError::not_found)?)?;
                no_content()
            }
            ("POST", ["users"]) => {
                let user = state.create_user(body)?;
                let mut response = render::user(view, &user);
                let id = if view.v2 { ids::ulid(Kind::User, user.id) } else { user.id.to_string() };
                response["meta"] = json!({"resource": format!("/api/application/users/{id}")});
                json_response(201, &response)
            }
            ("GET", ["locations"]) => {
                let items = state.catalog.locations.iter().map(|l| render::location(view, l)).collect();
                paged(items, q, "/api/application/locations")
            }
            ("GET", ["locations", lid]) => {
                let location = catalog_find(&state.catalog.locations, Kind::Location, lid, |l| l.id);
                json_response(200, &render::location(view, location.ok_or_else(SimError::not_found)?))
            }
            ("GET", ["nodes"]) => {
                let items = state.catalog.nodes.iter().map(|n| render::node(view, n, &state)).collect();
                paged(items, q, "/api/application/nodes")
            }
            ("GET", ["nodes", nid]) => {
                let id = ids::parse(Kind::Node, nid).ok_or_else(SimError::not_found)?;
                let node = state.catalog.nodes.iter().find(|n| n.id.unsigned_abs() == id);
                json_response(200, &render::node(view, node.ok_or_else(SimError::not_found)?, &state))
            }
            // Wisp only (wisp-api.md §7, wisp-gg/whmcs `getAllocations`): a node's free allocations, paged.
            ("GET", ["nodes", node, "allocations", "available"]) if state.flavor == Flavor::Wisp => {
                let node = ids::parse(Kind::Node, node).ok_or_else(SimError::not_found)?;
                let items = state
                    .allocations
                    .iter()
                    .filter(|a| a.node.unsigned_abs() == node && a.server.is_none())
                    .map(|a| render::allocation(view, a))
                    .collect();
                paged(items, q, "/api/application/nodes/allocations/available")
            }
            // Wisp only (wisp-api.md §7): the nodes of a location with room for the limits asked
            // (blank ones count as 0), as plain `{id, name}` objects in `data`, not paged.
            ("GET", ["locations", lid, "eligible-nodes"]) if state.flavor == Flavor::Wisp => {
                let location = catalog_find(&state.catalog.locations, Kind::Location, lid, |l| l.id)
                    .ok_or_else(SimError::not_found)?;
                let asked = |k: &str| q.get(k).and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(0);
                let limits = state::Limits {
                    memory: asked("memory"),
                    disk: asked("disk"),
                    cpu: asked("cpu"),
                    ..Default::default()
                };
                let nodes = state.nodes_with_room(&[location.id], &limits);
                let data: Vec<Value> = state
                    .catalog
                    .nodes
                    .iter()
                    .filter(|n| nodes.contains(&n.id))
                    .map(|n| json!({"id": view.id(Kind::Node, n.id.unsigned_abs()), "name": n.name, "fqdn": n.ip}))
                    .collect();
                json_response(200, &json!({"data": data}))
            }
            // `filter[server_id]`: digits → that server's, `false` or any other text → the
            // unassigned ones, empty → ignored (panel `AllocationController::index`, an
            // `AllowedFilter::callback` on `server_id`; pterodactyl-api.md §3). `filter[ip]` and
            // `filter[port]` are exact, a comma-separated value any of its parts (spatie's
            // `FiltersExact` reads it as an array: `whereIn`).
            ("GET", ["nodes", node, "allocations"]) => {
                let node = ids::parse(Kind::Node, node).ok_or_else(SimError::not_found)?;
                let holder = q.get("filter[server_id]").filter(|f| !f.is_empty()).map(|f| f.parse::<u64>().ok());
                let items = state
                    .allocations
                    .iter()
                    .filter(|a| a.node.unsigned_abs() == node)
                    .filter(|a| holder.is_none_or(|h| a.server == h))
                    .filter(|a| exact(q, "ip", &a.ip) && exact(q, "port", &a.port.to_string()))
                    .map(|a| render::allocation(view, a))
                    .collect();
                paged(items, q, "/api/application/nodes/allocations")
            }
            ("GET", ["nests"]) => {
                paged(state.catalog.nests.iter().map(|n| render::nest(view, n)).collect(), q, "/api/application/nests")
            }
            ("GET", ["nests", nid]) => {
                let nest = catalog_find(&state.catalog.nests, Kind::Nest, nid, |n| n.id);
                json_response(200, &render::nest(view, nest.ok_or_else(SimError::not_found)?))
            }
            ("GET", ["nests", nest, "eggs"]) => {
                let nest =
                    catalog_find(&state.catalog.nests, Kind::Nest, nest, |n| n.id).ok_or_else(SimError::not_found)?;
                let eggs = nest.eggs.iter().map(|e| render::egg(view, nest.id, e, false)).collect();
                json_response(200, &render::plain_list(eggs))
            }
            ("GET", ["nests", nest, "eggs", egg]) => {
                let nest =
                    catalog_find(&state.catalog.nests, Kind::Nest, nest, |n| n.id).ok_or_else(SimError::not_found)?;
                let egg = catalog_find(&nest.eggs, Kind::Egg, egg, |e| e.id).ok_or_else(SimError::not_found)?;
                let variables = q.get("include").is_some_and(|i| i.split(',').any(|x| x == "variables"));
                json_response(200, &render::egg(view, nest.id, egg, variables))
            }
            // Pelican: every egg in one list, without pagination, and one egg by its id.
            ("GET", ["eggs"]) if state.flavor == Flavor::Pelican => {
                let eggs = state
                    .catalog
                    .nests
                    .iter()
                    .flat_map(|n| n.eggs.iter().map(|e| render::egg(view, n.id, e, false)))
                    .collect();
                json_response(200, &render::plain_list(eggs))
            }
            ("GET", ["eggs", egg]) if state.flavor == Flavor::Pelican => {
                let (nest, egg) = state
                    .catalog
                    .nests
                    .iter()
                    .find_map(|n| catalog_find(&n.eggs, Kind::Egg, egg, |e| e.id).map(|e| (n.id, e)))
                    .ok_or_else(SimError::not_found)?;
                let variables = q.get("include").is_some_and(|i| i.split(',').any(|x| x == "variables"));
                json_response(200, &render::egg(view, nest, egg, variables))
            }
            ("GET", ["servers"]) => self.list_servers(&state, q, view, allocations)?,
            ("GET", ["servers", "external", ext]) => {
                let s = state
                    .servers
                    .values()
                    .find(|s| s.external_id.as_deref() == Some(*ext))
                    .ok_or_else(SimError::not_found)?;
                json_response(200, &render::server(&state, s, view, allocations))
            }
            ("GET", ["servers", sid]) => json_response(200, &server_json(&state, server_id(sid)?, allocations)?),
            ("POST", ["servers"]) => {
                let server = state.create_server(body, wings, install_fails)?;
                self.installs_started(install_fails).await;
                json_response(201, &render::server(&state, &server, view, Include::Omitted))
            }
            ("PATCH", ["servers", sid, action @ ("details" | "build" | "startup")]) => {
                let sid = server_id(sid)?;
                match *action {
                    "details" => state.update_details(sid, body)?,
                    "build" => state.update_build(sid, body)?,
                    _ => state.update_startup(sid, body)?,
                };
                json_response(200, &server_json(&state, sid, Include::Omitted)?)
            }
            ("PATCH", ["servers", sid, "server-template"]) if state.flavor == Flavor::Wisp => {
                let sid = server_id(sid)?;
                state.link_template(sid, body)?;
                json_response(200, &server_json(&state, sid, Include::Omitted)?)
            }
            ("POST", ["servers", sid, action @ ("suspend" | "unsuspend")]) => {
                state.suspend(server_id(sid)?, *action == "suspend", wings)?;
                no_content()
            }
            ("POST", ["servers", sid, "reinstall"]) => {
                state.reinstall(server_id(sid)?, wings, install_fails)?;
                self.installs_started(install_fails).await;
                no_content()
            }
            ("DELETE", ["servers", sid]) => {
                state.delete_server(server_id(sid)?, wings, false)?;
                no_content()
            }
            ("DELETE", ["servers", sid, "force"]) => {
                state.delete_server(server_id(sid)?, wings, true)?;
                no_content()
            }
            _ => {
                let known = matches!(seg.first(), Some(&("servers" | "users" | "nests" | "locations" | "nodes")))
                    || (state.flavor == Flavor::Pelican && seg.first() == Some(&"eggs"));
                if known {
                    return Err(SimError::new(
                        405,
                        "MethodNotAllowedHttpException",
                        format!("The {m} method is not supported for route api/application/{}.", seg.join("/")),
                    ));
                }
                return Err(SimError::no_route(&format!("api/application/{}", seg.join("/"))));
            }
        })
    }

    /// One install fault is spent per install started.
    async fn installs_started(&self, failed: bool) {
        if failed {
            let mut f = self.faults.lock().await;
            f.failing_installs = f.failing_installs.saturating_sub(1);
        }
    }

    fn list_servers(&self, state: &State, q: &Query, view: View, include: Include) -> Result<Response, SimError> {
        if let Some(e) = unknown_filter(q, &["uuid", "uuidShort", "name", "description", "image", "external_id"]) {
            return Err(e);
        }
        let mut servers: Vec<&state::Server> = state
            .servers
            .values()
            .filter(|s| filter(q, "external_id", s.external_id.as_deref().unwrap_or_default()))
            .filter(|s| filter(q, "name", &s.name))
            .collect();
        sort(q, &mut servers, |s| s.uuid.as_str())?;
        // Only the asked page is rendered: a listing of N servers stays O(N), not O(N²).
        let (page, per_page) = page_params(q);
        let total = servers.len();
        let items = servers
            .into_iter()
            .skip(((page - 1).saturating_mul(per_page)).min(total as u64) as usize)
            .take(per_page as usize)
            .map(|s| render::server(state, s, view, include))
            .collect();
        Ok(json_response(200, &render::list(items, page, per_page, total as u64, "/api/application/servers")))
    }

    fn user_matches(&self, u: &state::User, q: &Query) -> bool {
        match self.config.flavor {
            Flavor::Pterodactyl | Flavor::Pelican => {
                filter(q, "email", &u.email)
                    && filter(q, "username", u.username.as_deref().unwrap_or_default())
                    && filter(q, "uuid", &u.uuid)
                    && filter(q, "external_id", u.external_id.as_deref().unwrap_or_default())
            }
            // Wisp's `search` is fuzzy over several fields (INFERRED from Pterodactyl 0.7).
            Flavor::Wisp => match q.get("search").map(|s| s.to_lowercase()).filter(|s| !s.is_empty()) {
                None => true,
                Some(s) => {
                    [u.email.as_str(), &u.first_name, &u.last_name, u.external_id.as_deref().unwrap_or_default()]
                        .iter()
                        .any(|f| f.to_lowercase().contains(&s) || s.contains(&f.to_lowercase()) && !f.is_empty())
                }
            },
        }
    }
}

/// Route-model binding: a path naming a server, user, nest or egg that does not exist is a 404
/// before any permission check (Laravel's `SubstituteBindings` runs before the request's
/// `authorize`). External ids are looked up by the controllers, after it.
fn bound(state: &State, seg: &[&str]) -> Result<(), SimError> {
    let exists = match seg {
        ["servers", "external", ..] | ["users", "external", ..] => true,
        ["servers", id, ..] => ids::parse(Kind::Server, id).is_some_and(|id| state.servers.contains_key(&id)),
        ["users", id, ..] => ids::parse(Kind::User, id).is_some_and(|id| state.users.contains_key(&id)),
        ["nodes", id, ..] => {
            ids::parse(Kind::Node, id).is_some_and(|id| state.catalog.nodes.iter().any(|n| n.id.unsigned_abs() == id))
        }
        ["eggs", egg, ..] => {
            state.catalog.nests.iter().any(|n| catalog_find(&n.eggs, Kind::Egg, egg, |e| e.id).is_some())
        }
        ["nests", nest, rest @ ..] => {
            let nest = catalog_find(&state.catalog.nests, Kind::Nest, nest, |n| n.id);
            match (nest, rest) {
                (Some(n), ["eggs", egg, ..]) => catalog_find(&n.eggs, Kind::Egg, egg, |e| e.id).is_some(),
                (found, _) => found.is_some(),
            }
        }
        _ => true,
    };
    if exists { Ok(()) } else { Err(SimError::not_found()) }
}

/// The seeded object whose id (`id` of it) `text` names: an integer, or its v2 id.
fn catalog_find<'a, T>(items: &'a [T], kind: Kind, text: &str, id: impl Fn(&T) -> i64) -> Option<&'a T> {
    let wanted = ids::parse(kind, text)?;
    items.iter().find(|t| id(t).unsigned_abs() == wanted)
}

/// `sort=id|-id|uuid|-uuid` (users' and servers' `allowedSorts`, Spatie's query builder): the first
/// key decides (ids are unique); another is a 400 `InvalidSortQuery`. `rows` come in id order.
fn sort<T>(q: &Query, rows: &mut [&T], uuid: impl Fn(&T) -> &str) -> Result<(), SimError> {
    let Some(sort) = q.get("sort") else { return Ok(()) };
    if !sort.split(',').all(|s| matches!(s.trim_start_matches('-'), "id" | "uuid")) {
        return Err(SimError::new(
            400,
            "InvalidSortQuery",
            format!("Requested sort(s) `{sort}` is not allowed. Allowed sort(s) are `id, uuid`."),
        ));
    }
    match sort.split(',').next() {
        Some("-id") => rows.reverse(),
        Some("uuid") => rows.sort_by(|a, b| uuid(a).cmp(uuid(b))),
        Some("-uuid") => rows.sort_by(|a, b| uuid(b).cmp(uuid(a))),
        _ => {}
    }
    Ok(())
}

/// An exact filter: the value, or one of its comma-separated parts, is `value`.
fn exact(q: &Query, name: &str, value: &str) -> bool {
    match q.get(&format!("filter[{name}]")).filter(|f| !f.is_empty()) {
        None => true,
        Some(f) => f.split(',').any(|part| part == value),
    }
}

/// Pterodactyl filters are case-insensitive substring matches (`filter[x]=a,b` is an OR).
fn filter(q: &Query, name: &str, value: &str) -> bool {
    match q.get(&format!("filter[{name}]")).filter(|f| !f.is_empty()) {
        None => true,
        Some(f) => f.split(',').any(|part| value.to_lowercase().contains(&part.to_lowercase())),
    }
}

fn unknown_filter(q: &Query, allowed: &[&str]) -> Option<SimError> {
    let unknown: Vec<&str> = q
        .keys()
        .filter_map(|k| k.strip_prefix("filter[").and_then(|k| k.strip_suffix(']')))
        .filter(|k| !allowed.contains(k))
        .collect();
    (!unknown.is_empty()).then(|| {
        SimError::new(
            400,
            "InvalidFilterQuery",
            format!(
                "Requested filter(s) `{}` are not allowed. Allowed filter(s) are `{}`.",
                unknown.join(", "),
                allowed.join(", ")
            ),
        )
    })
}

fn paged(items: Vec<Value>, q: &Query, base: &str) -> Response {
    let (page, per_page) = page_params(q);
    let total = items.len() as u64;
    let start = ((page - 1).saturating_mul(per_page)).min(total) as usize;
    let end = (start as u64 + per_page).min(total) as usize;
    let page_items = items.into_iter().skip(start).take(end - start).collect();
    json_response(200, &render::list(page_items, page, per_page, total, base))
}
