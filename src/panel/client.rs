//! The panel client: one implementation of [`Panel`] over HTTP, parameterised by a [`Dialect`] that
//! holds everything that differs between Pterodactyl, Wisp and Pelican (headers, request bodies, state
//! fields, user search). The request bodies are pure functions, unit-tested in each dialect.

use reqwest::Method;
use serde_json::Value;

use super::acl;
use super::decode::{self, StateFields};
use super::http::{HttpCore, HttpSettings};
use super::model::*;
use super::{Panel, PanelError, Result};
use crate::crd::Flavor;

/// What differs between the panels' APIs.
pub trait Dialect: Send + Sync + 'static {
    const FLAVOR: Flavor;
    /// The `Accept` header.
    const ACCEPT: &'static str;
    /// How install and suspension are reported.
    const STATE: StateFields;
    /// Whether the panel has nests and locations (Pelican has neither: its eggs are top level and
    /// its nodes carry tags).
    const NESTS_AND_LOCATIONS: bool = true;

    /// Whether a 404 `NotFoundHttpException` with this detail is the panel's "no such object" —
    /// the only 404 that means absent.
    fn model_missing(detail: &str) -> bool;

    /// Query of a (fuzzy) user search by e-mail.
    fn user_search(email: &str) -> Vec<(&'static str, String)>;
    fn user_body(user: &NewUser) -> Value;
    fn create_body(server: &NewServer) -> Value;
    fn build_body(build: &Build) -> Value;
    /// The path and query of a node's free allocations (of ports `lo..=hi`, where the panel
    /// filters by port).
    fn free_allocations_query(node: &str, ports: Option<(u16, u16)>) -> (String, Vec<(&'static str, String)>);

    /// Both panels replace all four fields: the external id is always resent.
    fn details_body(d: &Details) -> Value {
        serde_json::json!({"name": d.name, "user": decode::id_json(&d.user), "external_id": d.external_id, "description": d.description})
    }

    /// Every variable is sent (Pterodactyl blanks the ones a startup update omits); the image
    /// field is `image` here, not `docker_image`.
    fn startup_body(s: &Startup) -> Value {
        serde_json::json!({"startup": s.startup, "environment": s.environment, "egg": decode::id_json(&s.egg), "image": s.image, "skip_scripts": false})
    }
    /// Query of a page of servers.
    fn servers_query(page: u32, per_page: u32) -> Vec<(&'static str, String)>;
    /// Query of the newest servers first, where the panel can sort by id descending.
    fn newest_servers_query(_page: u32, _per_page: u32) -> Option<Vec<(&'static str, String)>> {
        None
    }
}

/// A panel client speaking dialect `D`.
pub struct Client<D: Dialect> {
    http: HttpCore,
    _dialect: std::marker::PhantomData<D>,
}

impl<D: Dialect> Client<D> {
    pub fn new(settings: HttpSettings) -> Result<Self> {
        let http = HttpCore::new(settings, D::FLAVOR, D::ACCEPT, D::model_missing)?;
        Ok(Self { http, _dialect: std::marker::PhantomData })
    }

    fn server_from(&self, body: Option<Value>, what: &str) -> Result<PanelServer> {
        let body =
            body.ok_or_else(|| PanelError::Unexpected { status: 200, message: format!("{what}: empty response") })?;
        decode::server(&body, D::STATE)
    }

    /// A write whose response is the server (without its allocations: the panels omit them).
    async fn write_server(&self, path: &str, body: &Value) -> Result<PanelServer> {
        let response = self.http.send(Method::PATCH, path, Some(body)).await?;
        self.server_from(response, path)
    }
}

fn found<T>(result: Result<T>) -> Result<Option<T>> {
    match result {
        Ok(t) => Ok(Some(t)),
        Err(PanelError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A delete is done once the panel says the object does not exist.
fn gone(result: Result<Option<Value>>) -> Result<()> {
    match result {
        Ok(_) | Err(PanelError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Keeps ids URL-safe: they become path segments.
pub(super) fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

#[async_trait::async_trait]
impl<D: Dialect> Panel for Client<D> {
    fn flavor(&self) -> Flavor {
        D::FLAVOR
    }

    fn base_url(&self) -> &str {
        &self.http.base_url
    }

    async fn user_by_external_id(&self, external_id: &str) -> Result<Option<PanelUser>> {
        let body = found(self.http.get(&format!("/users/external/{}", segment(external_id)), &[]).await)?;
        body.map(|b| decode::user(&b)).transpose()
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<PanelUser>> {
        // Both panels only search by substring: match the e-mail exactly here.
        let items = self.http.get_all("/users", &D::user_search(email)).await?;
        for item in &items {
            let user = decode::user(item)?;
            if user.email.eq_ignore_ascii_case(email) {
                return Ok(Some(user));
            }
        }
        Ok(None)
    }

    async fn create_user(&self, user: &NewUser) -> Result<PanelUser> {
        let body = self.http.send(Method::POST, "/users", Some(&D::user_body(user))).await?;
        decode::user(&body.unwrap_or(Value::Null))
    }

    async fn user(&self, id: &str) -> Result<Option<PanelUser>> {
        let body = found(self.http.get(&format!("/users/{}", segment(id)), &[]).await)?;
        body.map(|b| decode::user(&b)).transpose()
    }

    async fn nodes(&self) -> Result<Vec<Node>> {
        self.http.get_all("/nodes", &[]).await?.iter().map(decode::node).collect()
    }

    async fn described_servers(&self, page: u32, per_page: u32) -> Result<Page<(PanelServer, ServerText)>> {
        let body = self.http.get_text("/servers", &D::servers_query(page, per_page)).await?;
        decode::described_page(body.get(), page, per_page, D::STATE)
    }

    async fn locations(&self) -> Result<Vec<Location>> {
        if !D::NESTS_AND_LOCATIONS {
            return Ok(Vec::new());
        }
        self.http.get_all("/locations", &[]).await?.iter().map(decode::location).collect()
    }

    /// Without nests (Pelican), one nest without an id holds every egg.
    async fn nests(&self) -> Result<Vec<Nest>> {
        if !D::NESTS_AND_LOCATIONS {
            return Ok(vec![Nest { id: String::new(), name: String::new() }]);
        }
        self.http.get_all("/nests", &[]).await?.iter().map(decode::nest).collect()
    }

    async fn eggs(&self, nest: &str) -> Result<Vec<Egg>> {
        let path = match D::NESTS_AND_LOCATIONS {
            true => format!("/nests/{}/eggs", segment(nest)),
            false => "/eggs".to_string(),
        };
        let body = self.http.get(&path, &[]).await?;
        let (items, _) = super::http::list_page(&body)?;
        items.iter().map(|item| decode::egg(item, nest)).collect()
    }

    async fn egg(&self, nest: &str, egg: &str) -> Result<Egg> {
        let path = match D::NESTS_AND_LOCATIONS {
            true => format!("/nests/{}/eggs/{}", segment(nest), segment(egg)),
            false => super::pelican::egg_path(egg),
        };
        let body = self.http.get(&path, &[("include", "variables".into())]).await?;
        decode::egg(&body, nest)
    }

    async fn servers_page(&self, page: u32, per_page: u32) -> Result<Page<PanelServer>> {
        let body = self.http.get_text("/servers", &D::servers_query(page, per_page)).await?;
        decode::server_page(body.get(), page, per_page, D::STATE)
    }

    fn lists_newest_first(&self) -> bool {
        D::newest_servers_query(1, 1).is_some()
    }

    async fn newest_servers(&self, page: u32, per_page: u32) -> Result<Option<Vec<PanelServer>>> {
        let Some(query) = D::newest_servers_query(page, per_page) else { return Ok(None) };
        let body = self.http.get_text("/servers", &query).await?;
        Ok(Some(decode::server_page(body.get(), page, per_page, D::STATE)?.items))
    }

    async fn server(&self, id: &str) -> Result<PanelServer> {
        let body = self.http.get(&format!("/servers/{}", segment(id)), &[("include", "allocations".into())]).await?;
        decode::server(&body, D::STATE)
    }

    async fn server_by_external_id(&self, external_id: &str) -> Result<Option<PanelServer>> {
        let path = format!("/servers/external/{}", segment(external_id));
        let body = found(self.http.get(&path, &[("include", "allocations".into())]).await)?;
        body.map(|b| decode::server(&b, D::STATE)).transpose()
    }

    async fn create_server(&self, server: &NewServer) -> Result<PanelServer> {
        let body = self.http.send(Method::POST, "/servers", Some(&D::create_body(server))).await?;
        self.server_from(body, "create server")
    }

    async fn create_server_at(&self, server: &NewServer, placement: &Placement) -> Result<PanelServer> {
        let mut body = D::create_body(server);
        if let Some(fields) = body.as_object_mut() {
            fields.remove("deploy");
            let additional: Vec<Value> = placement.additional.iter().map(|a| decode::id_json(a)).collect();
            let allocation =
                serde_json::json!({"default": decode::id_json(&placement.default), "additional": additional});
            fields.insert("allocation".into(), allocation);
        }
        let body = self.http.send(Method::POST, "/servers", Some(&body)).await?;
        self.server_from(body, "create server")
    }

    async fn free_allocations(&self, node: &str, ports: Option<(u16, u16)>) -> Result<Vec<Allocation>> {
        let (path, query) = D::free_allocations_query(node, ports);
        let free: Vec<Allocation> =
            self.http.get_all(&path, &query).await?.iter().map(decode::allocation).collect::<Result<_>>()?;
        // A panel that does not filter by port (Wisp's listing has no filter) is filtered here.
        Ok(free.into_iter().filter(|a| ports.is_none_or(|(lo, hi)| (lo..=hi).contains(&a.port))).collect())
    }

    async fn add_allocations(&self, current: &PanelServer, add: &[String]) -> Result<PanelServer> {
        let build = Build {
            allocation: current.allocation.to_string(),
            limits: current.limits,
            features: current.features,
            switches: current.switches,
        };
        let mut body = D::build_body(&build);
        body["add_allocations"] = add.iter().map(|a| decode::id_json(a)).collect();
        self.write_server(&format!("/servers/{}/build", segment(&current.id)), &body).await?;
        self.server(&current.id).await
    }

    async fn update_build(&self, id: &str, build: &Build) -> Result<PanelServer> {
        self.write_server(&format!("/servers/{}/build", segment(id)), &D::build_body(build)).await
    }

    async fn update_details(&self, id: &str, details: &Details) -> Result<PanelServer> {
        self.write_server(&format!("/servers/{}/details", segment(id)), &D::details_body(details)).await
    }

    async fn update_startup(&self, id: &str, startup: &Startup) -> Result<PanelServer> {
        self.write_server(&format!("/servers/{}/startup", segment(id)), &D::startup_body(startup)).await
    }

    async fn suspend(&self, id: &str) -> Result<()> {
        self.http.send(Method::POST, &format!("/servers/{}/suspend", segment(id)), None).await.map(drop)
    }

    async fn unsuspend(&self, id: &str) -> Result<()> {
        self.http.send(Method::POST, &format!("/servers/{}/unsuspend", segment(id)), None).await.map(drop)
    }

    async fn missing_permissions(&self) -> Result<Vec<String>> {
        let one = || vec![("page", "1".to_string()), ("per_page", "1".to_string())];
        let mut missing = Vec::new();
        let mut lacks = |result: Result<()>, resource: &str, write: bool| match result {
            Ok(()) => Ok(()),
            Err(PanelError::Forbidden { .. }) => {
                missing.push(acl::describe_as(D::FLAVOR, resource, write));
                Ok(())
            }
            Err(e) => Err(e),
        };
        if D::NESTS_AND_LOCATIONS {
            lacks(self.http.get("/locations", &one()).await.map(drop), "locations", false)?;
            let nests = self.http.get("/nests", &one()).await;
            let nest = nests
                .as_ref()
                .ok()
                .and_then(|b| b.pointer("/data/0/attributes"))
                .and_then(|a| decode::id(a, "nest", "id").ok());
            lacks(nests.map(drop), "nests", false)?;
            if let Some(nest) = nest {
                let eggs = self.http.get(&format!("/nests/{}/eggs", segment(&nest)), &[]).await;
                lacks(eggs.map(drop), "eggs", false)?;
            }
        } else {
            lacks(self.http.get("/eggs", &[]).await.map(drop), "eggs", false)?;
        }
        lacks(self.http.get("/users", &one()).await.map(drop), "users", false)?;
        let mut servers = one();
        servers.push(("include", "allocations".into()));
        let listed = self.http.get("/servers", &servers).await;
        let first = listed.as_ref().ok().and_then(|b| b.pointer("/data/0")).cloned();
        lacks(listed.map(drop), "servers", false)?;
        let nodes = self.http.get("/nodes", &one()).await;
        let node = nodes.as_ref().ok().and_then(|b| b.pointer("/data/0/attributes"));
        let node = node.and_then(|n| decode::id(n, "node", "id").ok());
        lacks(nodes.map(drop), "nodes", false)?;
        match (first, node) {
            (Some(server), _) => lacks(decode::server(&server, D::STATE).map(drop), "allocations", false)?,
            // No server to look at: a node's allocations need the same permission.
            (None, Some(id)) => {
                let path = format!("/nodes/{}/allocations", segment(&id));
                lacks(self.http.get(&path, &one()).await.map(drop), "allocations", false)?;
            }
            (None, None) => {}
        }
        for (resource, path) in [("users", "/users"), ("servers", "/servers")] {
            let refused = match self.http.send(Method::POST, path, Some(&Value::Object(Default::default()))).await {
                Ok(_) | Err(PanelError::Validation { .. }) => Ok(()),
                Err(e) => Err(e),
            };
            lacks(refused, resource, true)?;
        }
        // Without read there is no write either: name the two once.
        let all = missing.clone();
        missing.retain(|m| !m.ends_with("(read)") || !all.contains(&m.replace("(read)", "(read and write)")));
        Ok(missing)
    }

    async fn delete_server(&self, id: &str) -> Result<()> {
        gone(self.http.send(Method::DELETE, &format!("/servers/{}", segment(id)), None).await)
    }

    async fn force_delete_server(&self, id: &str) -> Result<()> {
        gone(self.http.send(Method::DELETE, &format!("/servers/{}/force", segment(id)), None).await)
    }

    async fn delete_user(&self, id: &str) -> Result<()> {
        gone(self.http.send(Method::DELETE, &format!("/users/{}", segment(id)), None).await)
    }
}
