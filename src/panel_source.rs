//! Where a command-line tool (`import`, `conformance`) finds a panel: a GamePanel and its Secret in
//! the cluster, or a URL, a flavor and a key given by hand.

use std::path::PathBuf;
use std::sync::Arc;

use crate::crd::{Flavor, GamePanel, WispApiVersion};
use crate::panel::{self, ApiKey, Panel, TlsTrust};

#[derive(clap::Args, Debug)]
pub struct PanelSource {
    /// Read the panel's URL, flavor and API key from this GamePanel and its Secret (kubeconfig).
    #[arg(long, conflicts_with_all = ["url", "flavor"])]
    pub gamepanel: Option<String>,
    /// The panel's URL (with --flavor and the key in PTEROBOX_API_KEY or --api-key-file).
    #[arg(long, requires = "flavor")]
    pub url: Option<String>,
    /// The panel's flavor with --url.
    #[arg(long, value_enum)]
    pub flavor: Option<FlavorArg>,
    /// Wisp's media type with --url: v1 (integer ids) or v2 (string ids).
    #[arg(long, value_enum, default_value = "v1")]
    pub wisp_api_version: WispArg,
    /// A file holding the application API key (else the PTEROBOX_API_KEY environment variable).
    #[arg(long)]
    pub api_key_file: Option<PathBuf>,
    /// PEM certificates of a private CA that signed the panel's certificate, with --url (a
    /// GamePanel's own `caSecretRef` is read with --gamepanel).
    #[arg(long, requires = "url")]
    pub ca_file: Option<PathBuf>,
    /// Also trust the system's roots, with --url (a GamePanel's own `trustSystemRoots` with --gamepanel).
    #[arg(long, requires = "url")]
    pub trust_system_roots: bool,
    /// The cluster of --gamepanel.
    #[command(flatten)]
    pub cluster: crate::kubeconfig::ClusterArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum FlavorArg {
    Pterodactyl,
    Wisp,
    Pelican,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum WispArg {
    V1,
    V2,
}

/// A panel found: its client, and what the client was made from.
pub struct Connected {
    pub panel: Arc<dyn Panel>,
    pub url: String,
    pub key: ApiKey,
    pub flavor: Flavor,
    pub wisp: WispApiVersion,
    /// The GamePanel it was read from, if any.
    pub gamepanel: Option<String>,
}

impl Connected {
    /// How to name the panel to a reader (never its key).
    pub fn describe(&self) -> String {
        match &self.gamepanel {
            Some(name) => format!("GamePanel {name} ({})", self.url),
            None => self.url.clone(),
        }
    }
}

impl PanelSource {
    /// A client of the panel, its budget `requests_per_minute` unless a GamePanel says otherwise.
    pub async fn connect(&self, requests_per_minute: u32) -> anyhow::Result<Connected> {
        let (url, key, flavor, wisp, rpm, gamepanel, trust) = match (&self.gamepanel, &self.url, self.flavor) {
            (Some(name), _, _) => {
                let client = self.cluster.client().await?;
                let gp: GamePanel = kube::Api::<GamePanel>::all(client.clone()).get(name).await?;
                let r = &gp.spec.credentials_secret_ref;
                let secret: k8s_openapi::api::core::v1::Secret =
                    kube::Api::namespaced(client.clone(), &r.namespace).get(&r.name).await?;
                let key = crate::controller::gamepanel::api_key_in(&secret, &r.key)
                    .ok_or_else(|| anyhow::anyhow!("Secret {}/{} has no key {:?}", r.namespace, r.name, r.key))?;
                let mut trust = TlsTrust { ca_pem: None, system_roots: gp.spec.trust_system_roots };
                if let Some(ca) = &gp.spec.ca_secret_ref {
                    let secret: k8s_openapi::api::core::v1::Secret =
                        kube::Api::namespaced(client, &ca.namespace).get(&ca.name).await?;
                    let pem = secret.data.as_ref().and_then(|d| d.get(&ca.key)).map(|v| v.0.clone());
                    trust.ca_pem = Some(pem.ok_or_else(|| {
                        anyhow::anyhow!("Secret {}/{} has no key {:?}", ca.namespace, ca.name, ca.key)
                    })?);
                }
                let rpm = u32::try_from(gp.spec.requests_per_minute).unwrap_or(requests_per_minute);
                let wisp = gp.spec.wisp_api_version.unwrap_or_default();
                (gp.spec.url.clone(), key, gp.spec.flavor, wisp, rpm, Some(name.clone()), trust)
            }
            (None, Some(url), Some(flavor)) => {
                let key = match &self.api_key_file {
                    Some(path) => std::fs::read_to_string(path)
                        .map_err(|e| anyhow::anyhow!("--api-key-file {}: {e}", path.display()))?,
                    None => std::env::var("PTEROBOX_API_KEY")
                        .map_err(|_| anyhow::anyhow!("give the API key in PTEROBOX_API_KEY or --api-key-file"))?,
                };
                let flavor = match flavor {
                    FlavorArg::Pterodactyl => Flavor::Pterodactyl,
                    FlavorArg::Wisp => Flavor::Wisp,
                    FlavorArg::Pelican => Flavor::Pelican,
                };
                let wisp = match self.wisp_api_version {
                    WispArg::V1 => WispApiVersion::V1,
                    WispArg::V2 => WispApiVersion::V2,
                };
                let ca_pem = match &self.ca_file {
                    Some(path) => {
                        Some(std::fs::read(path).map_err(|e| anyhow::anyhow!("--ca-file {}: {e}", path.display()))?)
                    }
                    None => None,
                };
                let trust = TlsTrust { ca_pem, system_roots: self.trust_system_roots };
                (url.clone(), ApiKey::new(key.trim()), flavor, wisp, requests_per_minute, None, trust)
            }
            _ => anyhow::bail!("give --gamepanel NAME, or --url URL --flavor pterodactyl|wisp|pelican"),
        };
        let mut settings = panel::HttpSettings::new(url.clone(), key.clone(), rpm);
        settings.trust = trust;
        let panel = panel::connect_with(flavor, wisp, settings)?;
        Ok(Connected { panel, url, key, flavor, wisp, gamepanel })
    }
}
