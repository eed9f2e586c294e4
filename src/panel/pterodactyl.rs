//! Pterodactyl 1.x application API (`../shared/ref/pterodactyl-api.md`). Its traps, absorbed here:
//! a details update clears an omitted `external_id`; a build update needs the current primary
//! `allocation` and all three feature limits; a startup update blanks every variable it omits;
//! `oom_disabled` is top-level; filters are substring matches; users need a username.

use serde_json::{Value, json};

use super::client::Dialect;
use super::decode::{StateFields, id_json};
use super::model::*;
use crate::crd::Flavor;

/// The Pterodactyl dialect.
pub struct Pterodactyl;

fn limits(l: &Limits) -> Value {
    json!({"memory": l.memory_mib, "swap": l.swap_mib, "disk": l.disk_mib, "io": l.io, "cpu": l.cpu_percent})
}

fn feature_limits(f: &FeatureLimits) -> Value {
    json!({"databases": f.databases, "allocations": f.allocations, "backups": f.backups})
}

/// A username the panel accepts (`^[a-z0-9][\w.-]+[a-z0-9]$` once lower-cased, at most 191
/// characters: panel `app/Rules/Username.php`, `app/Models/User.php`), unique per owner although
/// usernames are unique panel-wide and many owners share an e-mail local part (`admin@…`): the
/// local part, then a piece of the owner's external id (`pterobox-<box uid>`) — another piece for
/// each `attempt` after the panel answered 422 `unique` on `username`, then random ones.
pub fn username(email: &str, external_id: &str, attempt: u32) -> String {
    let local = email.split('@').next().unwrap_or_default().to_ascii_lowercase();
    let clean: String =
        local.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
    let clean = clean.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let id: Vec<char> = external_id
        .strip_prefix("pterobox-")
        .unwrap_or(external_id)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let piece: String = id.iter().skip(8 * attempt as usize).take(8).collect();
    let piece = if piece.is_empty() { format!("{:08x}", rand::random::<u32>()) } else { piece };
    let base: String = (if clean.is_empty() { "user" } else { clean }).chars().take(180).collect();
    let name = format!("{}-{piece}", base.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()));
    name.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()).to_string()
}

impl Dialect for Pterodactyl {
    const FLAVOR: Flavor = Flavor::Pterodactyl;
    const ACCEPT: &'static str = "application/json";
    const STATE: StateFields = StateFields::PterodactylStatus;

    /// A missing model's `ModelNotFoundException` is shown with a fixed text (panel
    /// `app/Exceptions/Handler.php::convertExceptionToArray`), or with Laravel's own "No query
    /// results for model …" when the panel runs with `APP_DEBUG`. A route the panel does not have
    /// is a `NotFoundHttpException` too, with "The route … could not be found.": not absent.
    fn model_missing(detail: &str) -> bool {
        detail == "The requested resource could not be found on the server."
            || detail.starts_with("No query results for model")
    }

    fn user_search(email: &str) -> Vec<(&'static str, String)> {
        vec![("filter[email]", email.to_string())]
    }

    fn user_body(user: &NewUser) -> Value {
        let username = user.username.clone().unwrap_or_else(|| username(&user.email, &user.external_id, 0));
        json!({
            "email": user.email,
            "username": username,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "external_id": user.external_id,
        })
    }

    fn create_body(s: &NewServer) -> Value {
        json!({
            "name": s.name,
            "description": s.description,
            "external_id": s.external_id,
            "user": id_json(&s.user),
            "egg": id_json(&s.egg),
            "docker_image": s.image,
            "startup": s.startup,
            "environment": s.environment,
            "limits": limits(&s.limits),
            "feature_limits": feature_limits(&s.features),
            "deploy": {
                "locations": s.locations.iter().map(|l| id_json(l)).collect::<Vec<_>>(),
                "dedicated_ip": false,
                "port_range": s.port_range.iter().collect::<Vec<_>>(),
            },
            "oom_disabled": true,
            "start_on_completion": false,
            "skip_scripts": false,
        })
    }

    /// Neither `threads` nor `oom_disabled`: the panel keeps what it has for a field a build
    /// omits (`UpdateServerBuildConfigurationRequest::validated()` and
    /// `BuildModificationService`, which takes `Arr::only` of the fields sent), so a resize never
    /// clears a CPU pin or turns the OOM killer back off on a server someone else set up (adopted).
    fn build_body(b: &Build) -> Value {
        json!({
            "allocation": id_json(&b.allocation),
            "limits": limits(&b.limits),
            "feature_limits": feature_limits(&b.features),
        })
    }

    /// `filter[server_id]=false`: only the allocations no server holds; `filter[port]=A,A+1,…,B`:
    /// only those ports (an exact filter, whose comma-separated values the panel's query builder
    /// reads as "any of"; a port range spans at most 1000 ports, about 6 KB of URL).
    fn free_allocations_query(node: &str, ports: Option<(u16, u16)>) -> (String, Vec<(&'static str, String)>) {
        let mut query = vec![("filter[server_id]", "false".to_string())];
        if let Some((lo, hi)) = ports {
            query.push(("filter[port]", (lo..=hi).map(|p| p.to_string()).collect::<Vec<_>>().join(",")));
        }
        (format!("/nodes/{}/allocations", super::client::segment(node)), query)
    }

    fn servers_query(page: u32, per_page: u32) -> Vec<(&'static str, String)> {
        vec![
            ("page", page.to_string()),
            ("per_page", per_page.to_string()),
            ("sort", "id".into()),
            ("include", "allocations".into()),
        ]
    }

    fn newest_servers_query(page: u32, per_page: u32) -> Option<Vec<(&'static str, String)>> {
        Some(vec![
            ("page", page.to_string()),
            ("per_page", per_page.to_string()),
            ("sort", "-id".into()),
            ("include", "allocations".into()),
        ])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;

    pub(crate) fn new_server() -> NewServer {
        NewServer {
            name: "alice's survival".into(),
            description: "".into(),
            external_id: "7f3c9a1e-uid".into(),
            user: "7".into(),
            nest: "1".into(),
            egg: "3".into(),
            image: "ghcr.io/pterodactyl/yolks:java_21".into(),
            startup: "java -jar {{SERVER_JARFILE}}".into(),
            environment: BTreeMap::from([
                ("SERVER_JARFILE".into(), "server.jar".into()),
                ("DL_PATH".into(), "".into()),
            ]),
            limits: Limits { memory_mib: 4096, swap_mib: 512, disk_mib: 51200, io: 500, cpu_percent: 200 },
            features: FeatureLimits { databases: Some(2), allocations: Some(2), backups: Some(1) },
            locations: vec!["1".into()],
            tags: Vec::new(),
            port_range: Some("30100-30200".into()),
        }
    }

    #[test]
    fn create_uses_deploy_and_sends_every_feature_limit_and_oom_at_top_level() {
        let body = Pterodactyl::create_body(&new_server());
        assert_eq!(body["external_id"], "7f3c9a1e-uid", "a string, never a number");
        assert_eq!(body["user"], 7);
        assert_eq!(body["deploy"], json!({"locations": [1], "dedicated_ip": false, "port_range": ["30100-30200"]}));
        assert_eq!(body["feature_limits"], json!({"databases": 2, "allocations": 2, "backups": 1}));
        assert_eq!(body["oom_disabled"], true);
        assert!(body["limits"].get("oom_disabled").is_none());
        assert!(body.get("nest").is_none(), "Pterodactyl derives the nest from the egg");
        assert_eq!(body["environment"]["DL_PATH"], "", "every variable is sent");
    }

    #[test]
    fn a_create_without_port_range_sends_an_empty_list() {
        let mut s = new_server();
        s.port_range = None;
        assert_eq!(Pterodactyl::create_body(&s)["deploy"]["port_range"], json!([]));
    }

    #[test]
    fn build_resends_the_primary_allocation_and_all_feature_limits() {
        let body = Pterodactyl::build_body(&Build {
            allocation: "118".into(),
            limits: Limits { memory_mib: 1024, swap_mib: 0, disk_mib: 2048, io: 500, cpu_percent: 100 },
            features: FeatureLimits { databases: Some(0), allocations: Some(1), backups: Some(0) },
            switches: Switches { oom_disabled: Some(false), force_outgoing_ip: None },
        });
        assert_eq!(body["allocation"], 118);
        assert_eq!(body["feature_limits"], json!({"databases": 0, "allocations": 1, "backups": 0}));
        assert_eq!(body["limits"]["memory"], 1024);
        assert!(body.get("oom_disabled").is_none() && body["limits"].get("threads").is_none(), "{body}");
    }

    #[test]
    fn details_always_resend_the_external_id() {
        let body = Pterodactyl::details_body(&Details {
            name: "n".into(),
            description: "".into(),
            user: "7".into(),
            external_id: "uid-1".into(),
        });
        assert_eq!(body, json!({"name": "n", "user": 7, "external_id": "uid-1", "description": ""}));
    }

    #[test]
    fn startup_sends_every_variable_and_the_image_as_image() {
        let env = BTreeMap::from([("A".to_string(), "1".to_string()), ("B".to_string(), "".to_string())]);
        let body = Pterodactyl::startup_body(&Startup {
            startup: "run".into(),
            image: "img".into(),
            egg: "3".into(),
            environment: env,
        });
        assert_eq!(body["environment"], json!({"A": "1", "B": ""}));
        assert_eq!(body["image"], "img");
        assert_eq!(body["skip_scripts"], false);
        assert!(body.get("docker_image").is_none());
    }

    #[test]
    fn users_get_a_username_the_panel_accepts() {
        let body = Pterodactyl::user_body(&NewUser {
            email: "Alice.Martin+games@example.com".into(),
            username: None,
            first_name: "Alice".into(),
            last_name: "Martin".into(),
            external_id: "pterobox-ab12cd34-ef56-7890-abcd-ef1234567890".into(),
        });
        assert_eq!(body["username"], "alice.martin_games-ab12cd34");
        assert_eq!(username("_@x", "9", 0), "user-9");
        for (email, ext) in [("a@b.c", "x"), ("--@b.c", "-"), ("Ω@b.c", "ΩΩ"), (&"x".repeat(300), "pterobox-1")] {
            for attempt in 0..5 {
                let u = username(email, ext, attempt);
                let ok = u.len() >= 3
                    && u.len() <= 191
                    && u.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                    && u.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
                    && u.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
                assert!(ok, "{u}");
            }
        }
    }

    #[test]
    fn owners_sharing_a_local_part_get_different_usernames_and_retries_differ() {
        let red = username("admin@red.example", "pterobox-0f1e2d3c-aaaa-4bbb-8ccc-111111111111", 0);
        let green = username("admin@green.example", "pterobox-9a8b7c6d-aaaa-4bbb-8ccc-222222222222", 0);
        assert_ne!(red, green);
        let ext = "pterobox-0f1e2d3c-aaaa-4bbb-8ccc-111111111111";
        let attempts: std::collections::BTreeSet<String> =
            (0..6).map(|a| username("admin@red.example", ext, a)).collect();
        assert_eq!(attempts.len(), 6, "{attempts:?}");
    }
}
