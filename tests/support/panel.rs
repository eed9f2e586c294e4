//! `pterobox panel-sim` in-process on a loopback port, and a client for it.

use std::sync::Arc;

use pterobox::crd::Flavor;
use pterobox::panel::{self, ApiKey, HttpSettings, Panel};
use pterobox::sim::{self, Faults, SimConfig, SimHandle, Stats};

/// An API key that is easy to search for in logs and errors.
pub const SIM_KEY: &str = "ptla_TESTKEYtestkeyTESTKEYtestkeyTESTKEYtestkey01";

/// A running simulator and a client of it.
pub struct TestPanel {
    pub sim: SimHandle,
    pub client: Arc<dyn Panel>,
    pub flavor: Flavor,
}

/// Starts a simulator of `flavor` (after `tweak` adjusts its config) and connects a client.
pub async fn start(flavor: Flavor, tweak: impl FnOnce(&mut SimConfig)) -> TestPanel {
    let mut config = SimConfig::new(flavor, SIM_KEY);
    config.install_delay = std::time::Duration::from_millis(300);
    tweak(&mut config);
    let sim = sim::spawn(config, "127.0.0.1:0".parse().expect("addr")).await.expect("start panel-sim");
    let client = panel::connect(flavor, settings(&sim.url)).expect("client");
    TestPanel { sim, client, flavor }
}

/// Client settings for a simulator: generous budget, quick retries.
pub fn settings(url: &str) -> HttpSettings {
    let mut s = HttpSettings::new(url, ApiKey::new(SIM_KEY), 10_000);
    s.retry_backoff = std::time::Duration::from_millis(20);
    s
}

impl TestPanel {
    pub async fn stats(&self) -> Stats {
        reqwest::get(format!("{}/_sim/stats", self.sim.url)).await.expect("stats").json().await.expect("stats json")
    }

    pub async fn reset_stats(&self) {
        let response =
            reqwest::Client::new().post(format!("{}/_sim/reset-stats", self.sim.url)).send().await.expect("reset");
        assert!(response.status().is_success(), "{}", response.status());
    }

    pub async fn set_faults(&self, faults: Faults) {
        let response = reqwest::Client::new()
            .put(format!("{}/_sim/faults", self.sim.url))
            .json(&faults)
            .send()
            .await
            .expect("faults");
        assert!(response.status().is_success(), "{}", response.status());
    }

    /// Adds an application key to the simulator (its owner and permission bits).
    pub async fn add_key(&self, key: &str, owner: &str, permissions: &[(&str, u8)]) {
        let body = serde_json::json!({
            "key": key, "owner": owner,
            "permissions": permissions.iter().map(|(p, b)| (p.to_string(), *b)).collect::<std::collections::BTreeMap<_, _>>(),
        });
        let response =
            reqwest::Client::new().post(format!("{}/_sim/keys", self.sim.url)).json(&body).send().await.expect("keys");
        assert!(response.status().is_success(), "{}", response.status());
    }

    /// Revokes `key` on the simulator, as an admin deleting it: its next request is a 401.
    pub async fn revoke_key(&self, key: &str) {
        let response =
            reqwest::Client::new().delete(format!("{}/_sim/keys/{key}", self.sim.url)).send().await.expect("revoke");
        assert!(response.status().is_success(), "{}", response.status());
    }

    /// A client of this simulator with another key.
    pub fn client_with_key(&self, key: &str) -> Arc<dyn Panel> {
        let mut s = settings(&self.sim.url);
        s.api_key = ApiKey::new(key);
        panel::connect(self.flavor, s).expect("client")
    }

    /// A raw request with `key`: status, headers and the body as JSON (`Null` when it is not).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        let accept = match self.flavor {
            Flavor::Pterodactyl | Flavor::Pelican => "application/json",
            Flavor::Wisp => "application/vnd.wisp.v1+json",
        };
        let mut request = reqwest::Client::new()
            .request(method.parse().expect("method"), format!("{}/api/application{path}", self.sim.url))
            .bearer_auth(key)
            .header("Accept", accept);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("raw request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Every server of the simulator, past its faults and rate limit.
    pub async fn servers(&self) -> Vec<SimServer> {
        sim_servers(&self.sim.url).await.expect("sim servers")
    }

    /// A raw GET of the panel's API, as JSON.
    pub async fn raw_get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
        let accept = match self.flavor {
            Flavor::Pterodactyl | Flavor::Pelican => "application/json",
            Flavor::Wisp => "application/vnd.wisp.v1+json",
        };
        let response = reqwest::Client::new()
            .get(format!("{}/api/application{path}", self.sim.url))
            .bearer_auth(SIM_KEY)
            .header("Accept", accept)
            .send()
            .await
            .expect("raw get");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.json().await.unwrap_or(serde_json::Value::Null))
    }
}

/// Every server of a panel, through its client (the listing the operator's lister makes).
pub trait AllServers {
    fn all_servers(
        &self,
    ) -> impl std::future::Future<Output = pterobox::panel::Result<Vec<pterobox::panel::PanelServer>>>;
}

impl<'a> AllServers for dyn Panel + 'a {
    async fn all_servers(&self) -> pterobox::panel::Result<Vec<pterobox::panel::PanelServer>> {
        let mut servers = Vec::new();
        self.each_server_page(&mut |page| servers.extend(page)).await?;
        Ok(servers)
    }
}

/// A server as the simulator's `GET /_sim/servers` lists it (neither counted nor faulted).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SimServer {
    pub id: u64,
    pub external_id: Option<String>,
    pub user: u64,
    /// MiB.
    pub memory: i64,
    /// MiB.
    pub disk: i64,
    /// Percent of a core.
    pub cpu: i64,
    /// Feature limits (null when the panel stored none).
    #[serde(default)]
    pub databases: Option<i64>,
    #[serde(default)]
    pub allocations: Option<i64>,
    #[serde(default)]
    pub backups: Option<i64>,
    /// The game node it is on.
    #[serde(default)]
    pub node: i64,
    #[serde(default)]
    pub suspended: bool,
    /// Pterodactyl's `servers.status` (null once installed).
    #[serde(default)]
    pub status: Option<String>,
}

/// Every server of the simulator at `url`, past its faults and rate limit.
pub async fn sim_servers(url: &str) -> Result<Vec<SimServer>, String> {
    let response = reqwest::get(format!("{url}/_sim/servers")).await.map_err(|e| e.to_string())?;
    response.json().await.map_err(|e| e.to_string())
}

/// How many creates of `kind` the simulator at `url` accepted, per external id, over its whole
/// life: what the operator *made*, counted whether or not the panel would refuse a second one.
pub async fn accepted_creates(
    url: &str,
    kind: pterobox::sim::CreatedKind,
) -> Result<std::collections::BTreeMap<String, usize>, String> {
    let response = reqwest::get(format!("{url}/_sim/creates")).await.map_err(|e| e.to_string())?;
    let creates: Vec<pterobox::sim::Created> = response.json().await.map_err(|e| e.to_string())?;
    let mut per_external = std::collections::BTreeMap::new();
    for c in creates.iter().filter(|c| c.kind == kind) {
        *per_external.entry(c.external_id.clone().unwrap_or_default()).or_insert(0) += 1;
    }
    Ok(per_external)
}

/// Every answer the simulator at `url` gave to a known key, oldest first (`GET /_sim/requests`):
/// what clients *sent*, whatever the panel kept.
pub async fn requests(url: &str) -> Result<Vec<pterobox::sim::Answered>, String> {
    let response = reqwest::get(format!("{url}/_sim/requests")).await.map_err(|e| e.to_string())?;
    response.json().await.map_err(|e| e.to_string())
}

/// A simulator tweak: no uniqueness of external ids, e-mails or usernames, so that only the
/// operator's own lookups keep servers and owners from being made twice (a duplicate check on a
/// panel that refuses the second create could not fail).
pub fn no_uniqueness(c: &mut SimConfig) {
    c.unique_external_ids = false;
    c.unique_users = false;
}

/// The external ids the panel accepted more than one create of `kind` for.
pub async fn made_twice(url: &str, kind: pterobox::sim::CreatedKind) -> Vec<(String, usize)> {
    let creates = accepted_creates(url, kind).await.expect("the simulator's creates");
    creates.into_iter().filter(|(_, n)| *n > 1).collect()
}
