//! Wisp application API (`../shared/ref/wisp-api.md`, checked against Wisp's own billing module,
//! wisp-gg/whmcs `wisp/wisp.php`, 2026-06). Differences from Pterodactyl, absorbed here: the
//! `application/vnd.wisp.v1+json` Accept header, or `…v2+json`, under which ids are prefixed
//! ULID strings (`user_01kt…`) rather than integers; a `nest` on create and a `pack` on startup
//! updates; backup limits as `backup_count_limit` and `backup_megabytes_limit`; flat limits on
//! build; users without a username, found with `?search=`; install and suspension as `suspended` +
//! `container.installed` (a bool or a number: INFERRED, both read).

use serde_json::{Value, json};

use super::client::Dialect;
use super::decode::{StateFields, id_json};
use super::model::*;
use crate::crd::Flavor;

/// The Wisp dialect, speaking the v1 media type (integer ids) or, with `V2`, the v2 one.
pub struct Wisp<const V2: bool = false>;

/// Wisp caps backups by size as well as by count: a server may keep backups up to its disk size.
fn feature_limits(f: &FeatureLimits, disk_mib: u64) -> Value {
    let size = match f.backups {
        Some(0) => 0,
        _ => disk_mib,
    };
    json!({
        "databases": f.databases,
        "allocations": f.allocations,
        "backup_count_limit": f.backups,
        "backup_megabytes_limit": size,
    })
}

impl<const V2: bool> Dialect for Wisp<V2> {
    const FLAVOR: Flavor = Flavor::Wisp;
    const ACCEPT: &'static str = if V2 { "application/vnd.wisp.v2+json" } else { "application/vnd.wisp.v1+json" };
    const STATE: StateFields = StateFields::WispFlags;

    /// INFERRED: Wisp forked Pterodactyl 0.7, whose error handler hides every detail behind one
    /// generic text, so a missing object and a missing route may read alike; only a detail that
    /// names a route is taken for a route. (The GamePanel's connection check reads the catalog
    /// first, so a base URL with a wrong path never becomes Ready.)
    fn model_missing(detail: &str) -> bool {
        !detail.starts_with("The route ")
    }

    /// As the official module sends it: the image as `image`, and the (unused) `pack`.
    fn startup_body(s: &Startup) -> Value {
        json!({"startup": s.startup, "environment": s.environment, "egg": id_json(&s.egg), "pack": null, "image": s.image, "skip_scripts": false})
    }

    fn user_search(email: &str) -> Vec<(&'static str, String)> {
        vec![("search", email.to_string())]
    }

    fn user_body(user: &NewUser) -> Value {
        json!({"email": user.email, "first_name": user.first_name, "last_name": user.last_name, "external_id": user.external_id})
    }

    fn create_body(s: &NewServer) -> Value {
        json!({
            "name": s.name,
            "description": s.description,
            "external_id": s.external_id,
            "user": id_json(&s.user),
            "nest": id_json(&s.nest),
            "egg": id_json(&s.egg),
            "docker_image": s.image,
            "startup": s.startup,
            "environment": s.environment,
            "limits": {"memory": s.limits.memory_mib, "swap": s.limits.swap_mib, "disk": s.limits.disk_mib, "io": s.limits.io, "cpu": s.limits.cpu_percent},
            "feature_limits": feature_limits(&s.features, s.limits.disk_mib),
            "deploy": {
                "locations": s.locations.iter().map(|l| id_json(l)).collect::<Vec<_>>(),
                "dedicated_ip": false,
                "port_range": s.port_range.iter().collect::<Vec<_>>(),
            },
            "start_on_completion": false,
            "skip_scripts": false,
        })
    }

    /// Flat limits, as the module sends them. `oom_disabled` and `force_outgoing_ip` are no
    /// spec's: each goes back as read, and is left out when the server did not show it (the module
    /// always sends both, so whether Wisp keeps an omitted one is unknown).
    fn build_body(b: &Build) -> Value {
        let mut body = json!({
            "allocation": id_json(&b.allocation),
            "memory": b.limits.memory_mib,
            "swap": b.limits.swap_mib,
            "disk": b.limits.disk_mib,
            "io": b.limits.io,
            "cpu": b.limits.cpu_percent,
            "feature_limits": feature_limits(&b.features, b.limits.disk_mib),
        });
        let switches = [("oom_disabled", b.switches.oom_disabled), ("force_outgoing_ip", b.switches.force_outgoing_ip)];
        for (name, value) in switches {
            if let Some(value) = value {
                body[name] = json!(value);
            }
        }
        body
    }

    fn servers_query(page: u32, per_page: u32) -> Vec<(&'static str, String)> {
        vec![("page", page.to_string()), ("per_page", per_page.to_string()), ("include", "allocations".into())]
    }

    /// Wisp's own route for a node's free allocations (wisp-api.md §7; the WHMCS module's
    /// `getAllocations`).
    fn free_allocations_query(node: &str, _: Option<(u16, u16)>) -> (String, Vec<(&'static str, String)>) {
        (format!("/nodes/{}/allocations/available", super::client::segment(node)), vec![])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::pterodactyl::tests::new_server;

    #[test]
    fn create_sends_the_nest_and_wisp_backup_limits() {
        let body = Wisp::<false>::create_body(&new_server());
        assert_eq!(body["nest"], 1);
        assert_eq!(
            body["feature_limits"],
            json!({"databases": 2, "allocations": 2, "backup_count_limit": 1, "backup_megabytes_limit": 51200})
        );
        assert!(body["limits"].get("threads").is_none(), "Wisp has no CPU pinning");
        // No spec owns them: the panel's defaults apply.
        assert!(body.get("oom_disabled").is_none() && body.get("force_outgoing_ip").is_none(), "{body}");
    }

    #[test]
    fn no_backups_means_no_backup_space() {
        let mut s = new_server();
        s.features.backups = Some(0);
        assert_eq!(Wisp::<false>::create_body(&s)["feature_limits"]["backup_megabytes_limit"], 0);
    }

    #[test]
    fn build_is_flat_and_resends_the_primary_allocation() {
        let body = Wisp::<false>::build_body(&Build {
            allocation: "311".into(),
            limits: Limits { memory_mib: 8192, swap_mib: 0, disk_mib: 40960, io: 500, cpu_percent: 300 },
            features: FeatureLimits { databases: Some(1), allocations: Some(2), backups: Some(5) },
            switches: Switches::default(),
        });
        assert_eq!(body["allocation"], 311);
        assert_eq!(
            (body["memory"].clone(), body["cpu"].clone(), body["disk"].clone()),
            (json!(8192), json!(300), json!(40960))
        );
        assert!(body.get("limits").is_none());
        assert_eq!(body["feature_limits"]["backup_count_limit"], 5);
        assert!(body.get("oom_disabled").is_none() && body.get("force_outgoing_ip").is_none(), "none read: {body}");
    }

    #[test]
    fn build_sends_back_the_switches_read() {
        let build = |oom, outgoing| Build {
            allocation: "311".into(),
            limits: Limits::default(),
            features: FeatureLimits::default(),
            switches: Switches { oom_disabled: oom, force_outgoing_ip: outgoing },
        };
        let body = Wisp::<false>::build_body(&build(Some(false), Some(true)));
        assert_eq!((body["oom_disabled"].clone(), body["force_outgoing_ip"].clone()), (json!(false), json!(true)));
        let body = Wisp::<false>::build_body(&build(Some(true), None));
        assert_eq!(body["oom_disabled"], true);
        assert!(body.get("force_outgoing_ip").is_none(), "{body}");
    }

    #[test]
    fn string_ids_of_the_v2_api_stay_strings() {
        let body = Wisp::<false>::build_body(&Build {
            allocation: "alloc_01kt".into(),
            limits: Limits::default(),
            features: FeatureLimits::default(),
            switches: Switches::default(),
        });
        assert_eq!(body["allocation"], "alloc_01kt");
    }

    #[test]
    fn startup_sends_the_pack_as_the_module_does() {
        let body = Wisp::<true>::startup_body(&Startup {
            startup: "run".into(),
            image: "img".into(),
            egg: "3".into(),
            environment: Default::default(),
        });
        assert_eq!(body["pack"], Value::Null);
        assert!(body.as_object().is_some_and(|b| b.contains_key("pack")));
        assert_eq!(Wisp::<true>::ACCEPT, "application/vnd.wisp.v2+json");
        assert_eq!(Wisp::<false>::ACCEPT, "application/vnd.wisp.v1+json");
    }

    #[test]
    fn users_have_no_username() {
        let body = Wisp::<false>::user_body(&NewUser {
            email: "bob@example.com".into(),
            username: Some("bob".into()),
            first_name: "Bob".into(),
            last_name: "Dupont".into(),
            external_id: "ext".into(),
        });
        assert!(body.get("username").is_none());
        assert_eq!(body["external_id"], "ext");
    }

    #[test]
    fn details_always_resend_the_external_id() {
        let body = Wisp::<false>::details_body(&Details {
            name: "n".into(),
            description: "d".into(),
            user: "12".into(),
            external_id: "uid".into(),
        });
        assert_eq!(body["external_id"], "uid");
    }
}
