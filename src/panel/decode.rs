//! Decoding panel JSON into the model. Never panics: a missing or mistyped field is a
//! [`PanelError::Unexpected`] that names it.

use serde_json::Value;

use super::model::*;
use super::{PanelError, Result};

fn malformed(what: &str, field: &str) -> PanelError {
    PanelError::Unexpected {
        status: 200,
        message: format!("malformed {what}: `{field}` is missing or has the wrong type"),
    }
}

/// The `attributes` of an `{"object": …, "attributes": {…}}` item.
pub(crate) fn attributes<'a>(item: &'a Value, what: &str) -> Result<&'a Value> {
    item.get("attributes").filter(|a| a.is_object()).ok_or_else(|| malformed(what, "attributes"))
}

/// An id that may be a JSON number (v1) or a string (Wisp v2).
pub(crate) fn id(v: &Value, what: &str, field: &str) -> Result<String> {
    match v.get(field) {
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(malformed(what, field)),
    }
}

pub(crate) fn int(v: &Value, what: &str, field: &str) -> Result<i64> {
    match v.get(field) {
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| malformed(what, field)),
        Some(Value::String(s)) => s.parse().map_err(|_| malformed(what, field)),
        _ => Err(malformed(what, field)),
    }
}

pub(crate) fn string(v: &Value, what: &str, field: &str) -> Result<String> {
    v.get(field).and_then(Value::as_str).map(str::to_string).ok_or_else(|| malformed(what, field))
}

pub(crate) fn opt_string(v: &Value, field: &str) -> Option<String> {
    v_str(v, field).map(str::to_string)
}

/// A text field, when present and not empty.
fn v_str<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get(field).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A text field the operator only compares (missing reads as empty).
fn digest(v: &Value, field: &str) -> Digest {
    Digest::of(v.get(field).and_then(Value::as_str).unwrap_or_default())
}

fn uint(v: &Value, field: &str) -> Option<u64> {
    match v.get(field) {
        Some(Value::Number(n)) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
}

pub(crate) fn user(item: &Value) -> Result<PanelUser> {
    let a = attributes(item, "user")?;
    Ok(PanelUser {
        id: id(a, "user", "id")?,
        external_id: opt_string(a, "external_id"),
        email: string(a, "user", "email")?,
        username: opt_string(a, "username"),
        first_name: opt_string(a, "first_name").unwrap_or_default(),
        last_name: opt_string(a, "last_name").unwrap_or_default(),
    })
}

pub(crate) fn node(item: &Value) -> Result<Node> {
    let a = attributes(item, "node")?;
    // The room is read leniently: a panel that lists nodes without it still lists them.
    let room = match (uint(a, "memory"), uint(a, "disk")) {
        (Some(memory_mib), Some(disk_mib)) => Some(NodeRoom {
            memory_mib,
            memory_overallocate: int(a, "node", "memory_overallocate").unwrap_or(0),
            disk_mib,
            disk_overallocate: int(a, "node", "disk_overallocate").unwrap_or(0),
            allocated: a
                .get("allocated_resources")
                .and_then(|r| Some(Allocated { memory_mib: uint(r, "memory")?, disk_mib: uint(r, "disk")? })),
        }),
        _ => None,
    };
    Ok(Node {
        id: id(a, "node", "id")?,
        name: opt_string(a, "name").unwrap_or_default(),
        // Pelican's nodes carry tags instead of a location.
        location: match a.get("tags") {
            Some(Value::Array(_)) => id(a, "node", "location_id").unwrap_or_default(),
            _ => id(a, "node", "location_id")?,
        },
        tags: a
            .get("tags")
            .and_then(Value::as_array)
            .map(|t| t.iter().filter_map(Value::as_str).map(String::from).collect())
            .unwrap_or_default(),
        public: a.get("public").and_then(Value::as_bool).unwrap_or(true),
        room,
    })
}

/// The text of a server (see [`ServerText`]); a field the panel omits reads as empty.
pub(crate) fn server_text(item: &Value) -> Result<ServerText> {
    let a = attributes(item, "server")?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    let environment = a
        .pointer("/container/environment")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), scalar_string(v))).collect())
        .unwrap_or_default();
    Ok(ServerText {
        name: text(a.get("name")),
        description: text(a.get("description")),
        startup: text(a.pointer("/container/startup_command")),
        image: text(a.pointer("/container/image")),
        environment,
    })
}

pub(crate) fn location(item: &Value) -> Result<Location> {
    let a = attributes(item, "location")?;
    Ok(Location { id: id(a, "location", "id")?, short: string(a, "location", "short")?, long: opt_string(a, "long") })
}

pub(crate) fn nest(item: &Value) -> Result<Nest> {
    let a = attributes(item, "nest")?;
    Ok(Nest { id: id(a, "nest", "id")?, name: string(a, "nest", "name")? })
}

pub(crate) fn egg(item: &Value, nest_id: &str) -> Result<Egg> {
    let a = attributes(item, "egg")?;
    // Pterodactyl: `docker_images` {label: image} and the deprecated `docker_image` (the default);
    // Wisp: `docker_image` only.
    let mut images: Vec<String> = opt_string(a, "docker_image").into_iter().collect();
    if let Some(map) = a.get("docker_images").and_then(Value::as_object) {
        for image in map.values().filter_map(Value::as_str) {
            if !images.iter().any(|i| i == image) {
                images.push(image.to_string());
            }
        }
    }
    let variables = match a.pointer("/relationships/variables/data") {
        Some(Value::Array(items)) => items.iter().map(egg_variable).collect::<Result<Vec<_>>>()?,
        _ => Vec::new(),
    };
    Ok(Egg {
        id: id(a, "egg", "id")?,
        nest: id(a, "egg", "nest").unwrap_or_else(|_| nest_id.to_string()),
        name: string(a, "egg", "name")?,
        docker_images: images,
        startup: opt_string(a, "startup").unwrap_or_default(),
        variables,
    })
}

fn egg_variable(item: &Value) -> Result<EggVariable> {
    let a = attributes(item, "egg variable")?;
    Ok(EggVariable {
        name: opt_string(a, "name").unwrap_or_default(),
        env_variable: string(a, "egg variable", "env_variable")?,
        default_value: a.get("default_value").map(scalar_string).unwrap_or_default(),
        // Pterodactyl and Wisp: `required|string|max:20`; Pelican: `["required", "string", "max:20"]`.
        rules: match a.get("rules") {
            Some(Value::Array(rules)) => rules.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("|"),
            _ => opt_string(a, "rules").unwrap_or_default(),
        },
    })
}

/// A scalar as the panels store it: strings as they are, numbers and booleans as text.
fn scalar_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// An include the key may not read comes back as `{"object": "null_resource"}` instead of the data
/// (panel `app/Transformers/Api/Application/BaseTransformer.php::authorize`): it is not "none".
fn null_resource(resource: &str) -> PanelError {
    PanelError::Forbidden {
        permission: super::acl::describe(resource, false),
        message: format!("the panel hid the server's {resource} from this key (a null_resource include)"),
    }
}

/// How each flavor reports install and suspension.
#[derive(Clone, Copy)]
pub enum StateFields {
    /// `status`: null | installing | install_failed | suspended | reinstall_failed | restoring_backup.
    PterodactylStatus,
    /// `suspended` bool + `container.installed` bool or int (INFERRED: no Wisp source shows them).
    WispFlags,
}

pub(crate) fn server(item: &Value, state: StateFields) -> Result<PanelServer> {
    let a = attributes(item, "server")?;
    let container = a.get("container").filter(|c| c.is_object()).ok_or_else(|| malformed("server", "container"))?;
    let installed_flag = match container.get("installed") {
        Some(Value::Bool(b)) => Some(*b as u64),
        Some(v) => v.as_u64(),
        None => None,
    };
    let (suspended, install) = match state {
        StateFields::PterodactylStatus => {
            let status = a.get("status").and_then(Value::as_str);
            let suspended = status == Some("suspended") || a.get("suspended").and_then(Value::as_bool) == Some(true);
            let install = match status {
                Some("installing") => InstallState::Installing,
                Some("install_failed") => InstallState::Failed,
                Some("suspended") if installed_flag == Some(0) => InstallState::Installing,
                _ => InstallState::Installed,
            };
            (suspended, install)
        }
        StateFields::WispFlags => {
            let suspended = a.get("suspended").and_then(Value::as_bool).unwrap_or(false);
            let install = match installed_flag {
                Some(0) => InstallState::Installing,
                Some(1) | None => InstallState::Installed,
                Some(_) => InstallState::Failed,
            };
            (suspended, install)
        }
    };
    let limits = a.get("limits").ok_or_else(|| malformed("server", "limits"))?;
    let features = a.get("feature_limits").cloned().unwrap_or(Value::Null);
    let environment = container
        .get("environment")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k, scalar_string(v))).collect())
        .unwrap_or_default();
    let mut allocations = match a.pointer("/relationships/allocations") {
        Some(included) if included.get("object").and_then(Value::as_str) == Some("null_resource") => {
            return Err(null_resource("allocations"));
        }
        Some(included) => match included.get("data") {
            Some(Value::Array(items)) => items.iter().map(allocation).collect::<Result<Vec<_>>>()?,
            _ => Vec::new(),
        },
        None => Vec::new(),
    };
    // Kept in the snapshot for as long as the server lives: a collected Vec starts with room for
    // four (320 bytes a server for the one allocation most servers have).
    allocations.shrink_to_fit();
    let uuid = opt_string(a, "uuid").unwrap_or_default();
    Ok(PanelServer {
        id: id(a, "server", "id")?.into(),
        external_id: v_str(a, "external_id").map(Uid::from),
        identifier: opt_string(a, "identifier").unwrap_or_else(|| uuid.chars().take(8).collect()).into(),
        uuid: uuid.as_str().into(),
        name: digest(a, "name"),
        description: digest(a, "description"),
        suspended,
        install,
        limits: Limits {
            memory_mib: uint(limits, "memory").ok_or_else(|| malformed("server", "limits.memory"))?,
            swap_mib: uint(limits, "swap").unwrap_or(0),
            disk_mib: uint(limits, "disk").ok_or_else(|| malformed("server", "limits.disk"))?,
            io: uint(limits, "io").unwrap_or(500),
            cpu_percent: uint(limits, "cpu").ok_or_else(|| malformed("server", "limits.cpu"))?,
        },
        features: FeatureLimits {
            databases: uint(&features, "databases"),
            allocations: uint(&features, "allocations"),
            backups: uint(&features, "backups").or_else(|| uint(&features, "backup_count_limit")),
        },
        user: id(a, "server", "user")?.into(),
        node: id(a, "server", "node")?.into(),
        // Pelican lets a server exist without an allocation (`allocation: null`): none, not an
        // unreadable listing.
        allocation: match a.get("allocation") {
            Some(Value::Null) => Text::default(),
            _ => id(a, "server", "allocation")?.into(),
        },
        nest: id(a, "server", "nest").map(Text::from).unwrap_or_default(),
        egg: id(a, "server", "egg")?.into(),
        startup: digest(container, "startup_command"),
        image: digest(container, "image"),
        environment,
        allocations,
        switches: Switches {
            // Pterodactyl shows it in `limits`; Wisp top level (INFERRED: its create's and build's name).
            oom_disabled: a.get("oom_disabled").or_else(|| limits.get("oom_disabled")).and_then(Value::as_bool),
            force_outgoing_ip: a.get("force_outgoing_ip").and_then(Value::as_bool),
        },
    })
}

pub(crate) fn allocation(item: &Value) -> Result<Allocation> {
    let a = attributes(item, "allocation")?;
    let port = int(a, "allocation", "port")?;
    Ok(Allocation {
        id: id(a, "allocation", "id")?.into(),
        ip: string(a, "allocation", "ip")?.into(),
        alias: opt_string(a, "alias").map(Text::from),
        port: u16::try_from(port).map_err(|_| malformed("allocation", "port"))?,
    })
}

/// A list page of servers, from the answer's JSON text.
pub(crate) fn server_page(body: &str, page: u32, per_page: u32, state: StateFields) -> Result<Page<PanelServer>> {
    page_of(body, page, per_page, |item| server(item, state))
}

/// A page of servers with their text (for `pterobox import`).
pub(crate) fn described_page(
    body: &str,
    page: u32,
    per_page: u32,
    state: StateFields,
) -> Result<Page<(PanelServer, ServerText)>> {
    page_of(body, page, per_page, |item| Ok((server(item, state)?, server_text(item)?)))
}

/// A list page with each item's JSON kept as text, decoded one at a time: a page of 100 servers as
/// one JSON tree was about 1 MB of the operator's peak memory, its text a third of that.
#[derive(serde::Deserialize)]
struct RawPage {
    data: Option<Vec<Box<serde_json::value::RawValue>>>,
    meta: Option<Value>,
}

fn page_of<T>(body: &str, page: u32, per_page: u32, decode: impl Fn(&Value) -> Result<T>) -> Result<Page<T>> {
    let unexpected = |message: String| PanelError::Unexpected { status: 200, message };
    let raw: RawPage = serde_json::from_str(body)
        .map_err(|e| unexpected(format!("a list response that is not a JSON object ({e})")))?;
    let data = raw.data.ok_or_else(|| unexpected("a list response without a `data` array".into()))?;
    super::http::at_most(data.len(), per_page, "GET /servers")?;
    let items = data
        .iter()
        .map(|item| {
            let item: Value = serde_json::from_str(item.get()).map_err(|e| malformed("server", &e.to_string()))?;
            decode(&item)
        })
        .collect::<Result<Vec<_>>>()?;
    let pagination = |field: &str| raw.meta.as_ref().and_then(|m| m.pointer(&format!("/pagination/{field}")));
    let total_pages = pagination("total_pages").and_then(Value::as_u64).unwrap_or(1);
    let total_pages = u32::try_from(total_pages).unwrap_or(u32::MAX).max(1);
    let total = pagination("total").and_then(Value::as_u64).unwrap_or(items.len() as u64);
    Ok(Page { items, page, total_pages, total })
}

/// A panel id as JSON: a number when it is all digits (v1 panels), else a string (Wisp v2).
pub(crate) fn id_json(id: &str) -> Value {
    match id.parse::<u64>() {
        Ok(n) if !id.starts_with('0') || id == "0" => Value::from(n),
        _ => Value::from(id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_server_without_an_allocation_is_read_as_having_none() {
        let item = json!({"attributes": {"id": 1, "uuid": "u", "user": 1, "node": 1, "egg": 5, "allocation": null,
            "container": {"startup_command": "x", "image": "i", "environment": {}},
            "limits": {"memory": 512, "disk": 1024, "cpu": 100}, "status": null}});
        let s = server(&item, StateFields::PterodactylStatus).expect("a Pelican server without an allocation");
        assert_eq!((s.allocation.as_str(), s.primary()), ("", None));
    }

    #[test]
    fn malformed_servers_are_errors_not_panics() {
        for bad in [
            json!(null),
            json!({}),
            json!({"attributes": 5}),
            json!({"attributes": {"id": 1}}),
            json!({"attributes": {"id": 1, "container": {}, "limits": {"memory": "lots"}}}),
            json!({"attributes": {"id": [], "container": {}, "limits": {}}}),
        ] {
            assert!(server(&bad, StateFields::PterodactylStatus).is_err(), "{bad}");
            assert!(server(&bad, StateFields::WispFlags).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_hidden_include_is_a_missing_permission_not_an_empty_list() {
        let body = json!({"attributes": {
            "id": 1, "user": 1, "node": 1, "allocation": 1, "egg": 3,
            "limits": {"memory": 1, "disk": 1, "cpu": 1}, "container": {},
            "relationships": {"allocations": {"object": "null_resource", "attributes": null}},
        }});
        match server(&body, StateFields::PterodactylStatus) {
            Err(PanelError::Forbidden { permission, .. }) => assert_eq!(permission, "r_allocations (read)"),
            other => panic!("{other:?}"),
        }
    }

    /// A server as Pterodactyl's `ServerTransformer` writes it with `include=allocations`.
    fn pterodactyl_server(status: Value) -> Value {
        json!({"object": "server", "attributes": {
            "id": 7, "external_id": "uid-7", "uuid": "9c0e2a4b-6d1f-4e3a-8b2c-5f7a1d9e0c33", "identifier": "9c0e2a4b",
            "name": "lobby", "description": "", "status": status, "suspended": status == json!("suspended"),
            "limits": {"memory": 1024, "swap": 0, "disk": 5120, "io": 500, "cpu": 100, "threads": null},
            "feature_limits": {"databases": 1, "allocations": 2, "backups": 3},
            "user": 3, "node": 1, "allocation": 11, "nest": 1, "egg": 3,
            "container": {"startup_command": "java -jar server.jar", "image": "ghcr.io/pterodactyl/yolks:java_17",
                          "installed": status != json!("installing") && status != json!("install_failed"),
                          "environment": {"SERVER_JARFILE": "server.jar", "MAX_PLAYERS": 20}},
            "relationships": {"allocations": {"object": "list", "data": [
                {"object": "allocation", "attributes": {"id": 12, "ip": "10.0.0.5", "alias": null, "port": 25566}},
                {"object": "allocation", "attributes": {"id": 11, "ip": "10.0.0.5", "alias": "mc.example.com", "port": 25565}}
            ]}}
        }})
    }

    #[test]
    fn a_pterodactyl_server_decodes_whole() {
        let s = server(&pterodactyl_server(Value::Null), StateFields::PterodactylStatus).expect("decodes");
        assert_eq!(
            (s.id.as_str(), s.external_id.clone(), s.identifier.as_str()),
            ("7", Some("uid-7".into()), "9c0e2a4b")
        );
        assert_eq!(
            (s.user.as_str(), s.node.as_str(), s.allocation.as_str(), s.nest.as_str(), s.egg.as_str()),
            ("3", "1", "11", "1", "3")
        );
        assert_eq!(s.limits, Limits { memory_mib: 1024, swap_mib: 0, disk_mib: 5120, io: 500, cpu_percent: 100 });
        assert_eq!(s.features, FeatureLimits { databases: Some(1), allocations: Some(2), backups: Some(3) });
        assert_eq!((s.name, s.description), (Digest::of("lobby"), Digest::of("")));
        assert_eq!(s.startup, Digest::of("java -jar server.jar"));
        assert!(s.environment.has("MAX_PLAYERS", "20"), "numbers are compared as the strings the panel stores");
        assert_eq!((s.install, s.suspended), (InstallState::Installed, false));
        let primary = s.primary().expect("the primary allocation among those included");
        assert_eq!((primary.port, primary.alias.as_deref()), (25565, Some("mc.example.com")));
    }

    /// `servers.status` as the panel writes it (`app/Models/Server.php`), and what the operator
    /// reads: `installed` follows the panel's `isInstalled()` (not installing, not install_failed).
    #[test]
    fn every_pterodactyl_status_maps_to_an_install_state() {
        for (status, install, suspended) in [
            (Value::Null, InstallState::Installed, false),
            (json!("installing"), InstallState::Installing, false),
            (json!("install_failed"), InstallState::Failed, false),
            (json!("reinstall_failed"), InstallState::Installed, false),
            (json!("restoring_backup"), InstallState::Installed, false),
            (json!("suspended"), InstallState::Installed, true),
        ] {
            let s = server(&pterodactyl_server(status.clone()), StateFields::PterodactylStatus).expect("decodes");
            assert_eq!((s.install, s.suspended), (install, suspended), "status {status}");
        }
        // Suspended while it was still installing (suspension overwrites the status).
        let mut body = pterodactyl_server(json!("suspended"));
        body["attributes"]["container"]["installed"] = json!(false);
        let s = server(&body, StateFields::PterodactylStatus).expect("decodes");
        assert_eq!((s.install, s.suspended), (InstallState::Installing, true));
    }

    #[test]
    fn wisp_flags_map_to_an_install_state_as_a_bool_or_a_number() {
        for (installed, install) in [
            (json!(true), InstallState::Installed),
            (json!(1), InstallState::Installed),
            (json!(false), InstallState::Installing),
            (json!(0), InstallState::Installing),
            (json!(2), InstallState::Failed),
        ] {
            let mut body = pterodactyl_server(Value::Null);
            body["attributes"]["container"]["installed"] = installed.clone();
            body["attributes"]["suspended"] = json!(true);
            let s = server(&body, StateFields::WispFlags).expect("decodes");
            assert_eq!((s.install, s.suspended), (install, true), "installed {installed}");
        }
        let mut body = pterodactyl_server(Value::Null);
        body["attributes"]["container"].as_object_mut().map(|c| c.remove("installed"));
        body["attributes"]["feature_limits"] = json!({"databases": 0, "allocations": 1, "backup_count_limit": 4});
        let s = server(&body, StateFields::WispFlags).expect("decodes");
        assert_eq!(s.install, InstallState::Installed, "no flag: installed");
        assert_eq!(s.features.backups, Some(4), "Wisp's backup count");
    }

    #[test]
    fn a_page_of_servers_carries_its_pagination_and_refuses_an_oversized_page() {
        let body = json!({"object": "list", "data": [pterodactyl_server(Value::Null)],
                          "meta": {"pagination": {"total": 101, "count": 1, "per_page": 100, "current_page": 2, "total_pages": 2}}});
        let page = server_page(&body.to_string(), 2, 100, StateFields::PterodactylStatus).expect("page");
        assert_eq!((page.items.len(), page.page, page.total_pages, page.total), (1, 2, 2, 101));
        let data: Vec<Value> = (0..3).map(|_| pterodactyl_server(Value::Null)).collect();
        let body = json!({"object": "list", "data": data, "meta": {"pagination": {"total": 3, "total_pages": 1}}});
        assert!(
            server_page(&body.to_string(), 1, 2, StateFields::PterodactylStatus).is_err(),
            "more items than asked for"
        );
        let refused =
            |text: &str| server_page(text, 1, 100, StateFields::PterodactylStatus).err().map(|e| e.to_string());
        assert!(refused("[]").is_some_and(|e| e.contains("not a JSON object")), "{:?}", refused("[]"));
        assert!(refused("{\"object\": \"list\"}").is_some_and(|e| e.contains("without a `data` array")));
    }

    #[test]
    fn ids_are_numbers_only_when_all_digits() {
        assert_eq!(id_json("42"), json!(42));
        assert_eq!(id_json("user_01kt"), json!("user_01kt"));
        assert_eq!(id_json("007"), json!("007"));
    }
}
