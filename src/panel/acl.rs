//! The application API's permissions. An application key holds one value per resource, in the
//! columns `r_servers`, `r_nodes`, `r_allocations`, … (0 none, 1 read, 3 read and write: panel
//! `app/Models/ApiKey.php`, `app/Services/Acl/Api/AdminAcl.php`); each route's request class names
//! the resource it needs, read for GET and write for the rest
//! (`app/Http/Requests/Api/Application/**`). Wisp keys have the same columns (wisp-api.md §2).

/// The resources of the permission columns.
pub const RESOURCES: [&str; 9] =
    ["servers", "nodes", "allocations", "users", "locations", "nests", "eggs", "database_hosts", "server_databases"];

/// What the operator does on a panel, as (resource, write): servers and users are read and
/// written; allocations (a server's address, a node's free ones), locations, nodes (their room),
/// nests and eggs (the catalog) are read.
pub const NEEDED: [(&str, bool); 7] = [
    ("servers", true),
    ("users", true),
    ("allocations", false),
    ("locations", false),
    ("nodes", false),
    ("nests", false),
    ("eggs", false),
];

/// The resource a route of the application API needs, and whether it writes; `None` for a path
/// that is no route of it.
pub fn resource_of(method: &str, segments: &[&str]) -> Option<(&'static str, bool)> {
    let resource = match segments {
        ["servers", ..] => "servers",
        ["users", ..] => "users",
        ["locations", ..] => "locations",
        ["nodes", _, "allocations", ..] => "allocations",
        ["nodes", ..] => "nodes",
        ["nests", _, "eggs", ..] => "eggs",
        ["nests", ..] => "nests",
        // Pelican's eggs are top level.
        ["eggs", ..] => "eggs",
        _ => return None,
    };
    Some((resource, method != "GET"))
}

/// A permission as an administrator reads it in the panel, e.g. `r_servers (read and write)`.
pub fn describe(resource: &str, write: bool) -> String {
    describe_as(Flavor::Pterodactyl, resource, write)
}

/// As [`describe`], in the words of `flavor`'s panel: Pelican's keys hold a map of singular
/// resource names (`server`, `egg`, …: its `app/Models/ApiKey.php`), the others `r_*` columns.
pub fn describe_as(flavor: Flavor, resource: &str, write: bool) -> String {
    let access = if write { "read and write" } else { "read" };
    match flavor {
        Flavor::Pelican => format!("{} ({access})", resource.strip_suffix('s').unwrap_or(resource)),
        Flavor::Pterodactyl | Flavor::Wisp => format!("r_{resource} ({access})"),
    }
}

/// The permission a request needs on `flavor`'s panel, described (the path is relative to
/// `/api/application`).
pub fn needed_by(flavor: Flavor, method: &str, path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split(['/', '?']).filter(|s| !s.is_empty()).collect();
    resource_of(method, &segments).map(|(resource, write)| describe_as(flavor, resource, write))
}

use crate::crd::Flavor;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_need_their_resource() {
        assert_eq!(resource_of("GET", &["servers", "7"]), Some(("servers", false)));
        assert_eq!(resource_of("POST", &["servers", "7", "suspend"]), Some(("servers", true)));
        assert_eq!(resource_of("GET", &["nests", "1", "eggs", "3"]), Some(("eggs", false)));
        assert_eq!(resource_of("GET", &["nests"]), Some(("nests", false)));
        assert_eq!(resource_of("GET", &["nodes", "1", "allocations"]), Some(("allocations", false)));
        assert_eq!(resource_of("GET", &["pets"]), None);
        let p = Flavor::Pterodactyl;
        assert_eq!(needed_by(p, "PATCH", "/servers/4/build").as_deref(), Some("r_servers (read and write)"));
        assert_eq!(needed_by(p, "GET", "/users?filter[email]=a").as_deref(), Some("r_users (read)"));
        assert_eq!(needed_by(Flavor::Pelican, "GET", "/eggs/5").as_deref(), Some("egg (read)"));
        assert_eq!(needed_by(Flavor::Pelican, "POST", "/servers").as_deref(), Some("server (read and write)"));
    }
}
