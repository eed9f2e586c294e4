//! Pelican's application API (`github:pelican-dev/panel`, the maintained fork of Pterodactyl; the
//! real v1.0.0-beta17 panel of `../shared/realpelican` is the authority). Pterodactyl's API
//! otherwise, without its nests and locations: eggs are top level (`/eggs`, `/eggs/{id}`, a
//! variable's `rules` a JSON array), nodes carry `tags`, a create's `deploy` needs `tags`,
//! `locations` (may be empty) and `port_range` (beta17 takes any free port for an empty one; a
//! server may be listed with `allocation: null`, which the decoder reads as none), users have no
//! first and last name, and a key's permissions are a map of singular names. The operator places
//! Pelican servers itself, on allocations it chose on a node carrying one of the box's tags:
//! beta17's `deploy.tags` does not filter.

use serde_json::{Value, json};

use super::client::Dialect;
use super::decode::StateFields;
use super::model::*;
use super::pterodactyl::Pterodactyl;
use crate::crd::Flavor;

/// The Pelican dialect.
pub struct Pelican;

impl Dialect for Pelican {
    const FLAVOR: Flavor = Flavor::Pelican;
    const ACCEPT: &'static str = "application/json";
    const STATE: StateFields = StateFields::PterodactylStatus;
    const NESTS_AND_LOCATIONS: bool = false;

    /// As Pterodactyl's (its `app/Exceptions/Handler.php` kept the text).
    fn model_missing(detail: &str) -> bool {
        Pterodactyl::model_missing(detail)
    }

    fn user_search(email: &str) -> Vec<(&'static str, String)> {
        Pterodactyl::user_search(email)
    }

    /// No first or last name: Pelican's users have none (it ignores them).
    fn user_body(user: &NewUser) -> Value {
        let username =
            user.username.clone().unwrap_or_else(|| super::pterodactyl::username(&user.email, &user.external_id, 0));
        json!({"email": user.email, "username": username, "external_id": user.external_id})
    }

    /// Pterodactyl's body with Pelican's `deploy`: `tags`, an empty `locations` and the port range,
    /// all three present. (The operator places Pelican servers itself, on an allocation it chose,
    /// so this `deploy` is replaced; it is what the panel would need without that.)
    fn create_body(s: &NewServer) -> Value {
        let mut body = Pterodactyl::create_body(s);
        body["deploy"] = json!({
            "tags": s.tags,
            "locations": [],
            "dedicated_ip": false,
            "port_range": s.port_range.iter().collect::<Vec<_>>(),
        });
        body
    }

    fn build_body(b: &Build) -> Value {
        Pterodactyl::build_body(b)
    }

    fn free_allocations_query(node: &str, ports: Option<(u16, u16)>) -> (String, Vec<(&'static str, String)>) {
        Pterodactyl::free_allocations_query(node, ports)
    }

    fn servers_query(page: u32, per_page: u32) -> Vec<(&'static str, String)> {
        Pterodactyl::servers_query(page, per_page)
    }

    fn newest_servers_query(page: u32, per_page: u32) -> Option<Vec<(&'static str, String)>> {
        Pterodactyl::newest_servers_query(page, per_page)
    }
}

/// The id of an egg as Pelican's paths take it.
pub(crate) fn egg_path(egg: &str) -> String {
    format!("/eggs/{}", super::client::segment(egg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_have_no_names_and_deploy_has_tags_and_empty_locations() {
        let user = Pelican::user_body(&NewUser {
            email: "alice@example.com".into(),
            username: None,
            first_name: "Alice".into(),
            last_name: "Martin".into(),
            external_id: "pterobox-ab12cd34".into(),
        });
        assert!(user.get("first_name").is_none() && user.get("last_name").is_none(), "{user}");
        assert_eq!(user["username"], "alice-ab12cd34");
        let mut s = super::super::pterodactyl::tests::new_server();
        s.locations = Vec::new();
        s.tags = vec!["eu".into()];
        let body = Pelican::create_body(&s);
        assert_eq!(
            body["deploy"],
            json!({"tags": ["eu"], "locations": [], "dedicated_ip": false, "port_range": ["30100-30200"]})
        );
        assert_eq!(body["egg"], 3);
        assert!(body.get("nest").is_none());
    }
}
