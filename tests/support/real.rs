//! The real Pterodactyl panel of the real-panel layer: the upstream panel that
//! `../shared/realpanel/start.sh` runs on loopback (`scripts/test.sh` starts it and exports where
//! it is), or a panel a user names with `PTEROBOX_REAL_PANEL_URL` and `PTEROBOX_REAL_PANEL_KEY`.
//!
//! - `PTEROBOX_REAL_PANEL_URL`, `PTEROBOX_REAL_PANEL_KEY`: the panel and an application key with
//!   every permission.
//! - `PTEROBOX_REAL_PANEL_DIR`, `PTEROBOX_REAL_PANEL_BUNDLE`: its work directory (`fixtures.json`,
//!   the Wings stub's switch files) and the directory of `reset.sh`; without them, the tests that
//!   reset the panel or switch its node say so and do not run.
//! - `PTEROBOX_REAL_PANEL_REQUIRED=1` (the test command sets it when it started the panel): a real
//!   panel that cannot be reached fails the tests instead of being reported as absent.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use pterobox::crd::Flavor;
use pterobox::panel::{self, ApiKey, HttpSettings, Panel};
use serde_json::Value;

/// The real panel, when the real-panel layer runs.
#[derive(Debug, Clone)]
pub struct RealPanel {
    pub flavor: Flavor,
    pub url: String,
    pub key: String,
    /// `start.sh`'s work directory, and the bundle holding `reset.sh`.
    dir: Option<PathBuf>,
    bundle: Option<PathBuf>,
}

/// The real panel named by the environment, or `None` after saying loudly that the real-panel
/// tests of `what` do not run. Panics when the test command promised one (`..._REQUIRED`).
pub fn real_panel(what: &str) -> Option<RealPanel> {
    real_of(Flavor::Pterodactyl, what)
}

/// The real panel of `flavor` (Pterodactyl: `PTEROBOX_REAL_PANEL_*`, `../shared/realpanel`;
/// Pelican: `PTEROBOX_REAL_PELICAN_*`, `../shared/realpelican`), as [`real_panel`] says.
pub fn real_of(flavor: Flavor, what: &str) -> Option<RealPanel> {
    let (prefix, fixture) = match flavor {
        Flavor::Pelican => ("PTEROBOX_REAL_PELICAN", "../shared/realpelican"),
        _ => ("PTEROBOX_REAL_PANEL", "../shared/realpanel"),
    };
    let var = |name: &str| std::env::var(format!("{prefix}_{name}")).ok().filter(|v| !v.is_empty());
    let required = var("REQUIRED").is_some();
    let (Some(url), Some(key)) = (var("URL"), var("KEY")) else {
        assert!(!required, "{prefix}_REQUIRED is set but no {prefix}_URL/_KEY");
        super::report(&format!(
            "\n!!! REAL PANEL LAYER NOT RUN: {what}: no real {flavor:?} panel (set {prefix}_URL and \
             {prefix}_KEY, or run bash scripts/test.sh beside {fixture})\n\n"
        ));
        return None;
    };
    let panel =
        RealPanel { flavor, url, key, dir: var("DIR").map(PathBuf::from), bundle: var("BUNDLE").map(PathBuf::from) };
    Some(panel)
}

/// The layer's own real panel, which a test may reset; `None` (said loudly) otherwise.
pub fn resettable_panel(what: &str) -> Option<RealPanel> {
    resettable_of(Flavor::Pterodactyl, what)
}

/// As [`resettable_panel`], for the real panel of `flavor`.
pub fn resettable_of(flavor: Flavor, what: &str) -> Option<RealPanel> {
    let panel = real_of(flavor, what)?;
    if !panel.managed() {
        super::report(&format!(
            "\n!!! REAL PANEL LAYER: {what} not run: the panel at {} is not the layer's own (no \
             PTEROBOX_REAL_PANEL_DIR and _BUNDLE), and this test resets the panel\n\n",
            panel.url
        ));
        return None;
    }
    Some(panel)
}

/// Only one test at a time works on a real panel (it is one panel, reset between tests; one lock
/// for both: a test binary holds the tests of one flavor).
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// What the Wings stub of node 1 does (its switch files, `../shared/realpanel/README.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wings {
    /// Installs succeed after a short delay.
    Installs,
    /// Installs are reported as failed.
    InstallsFail,
    /// The node refuses connections.
    Down,
    /// The node answers every request with this HTTP status.
    Answers(u16),
}

impl RealPanel {
    /// A client of the panel (quick read retries, the panel's own limit as the budget).
    pub fn client(&self) -> Arc<dyn Panel> {
        let mut s = HttpSettings::new(&self.url, ApiKey::new(&self.key), 240);
        s.retry_backoff = Duration::from_millis(50);
        panel::connect(self.flavor, s).expect("a client of the real panel")
    }

    /// `start.sh`'s work directory, when this is the layer's own panel.
    pub fn work_dir(&self) -> Option<&std::path::Path> {
        self.dir.as_deref()
    }

    /// Whether this panel can be reset and its node switched (the layer's own panel).
    pub fn managed(&self) -> bool {
        self.dir.is_some() && self.bundle.is_some()
    }

    /// Puts the panel back into its seeded state (`reset.sh`: no users but the admin, no servers,
    /// ids from 1 again, empty rate-limit buckets, the Wings stub's switches off).
    pub fn reset(&self) {
        let (Some(dir), Some(bundle)) = (&self.dir, &self.bundle) else {
            panic!("the real panel at {} cannot be reset: PTEROBOX_REAL_PANEL_DIR/_BUNDLE are not set", self.url)
        };
        let out = Command::new("bash")
            .arg(bundle.join("reset.sh"))
            .arg("--dir")
            .arg(dir)
            .output()
            .expect("run the real panel's reset.sh");
        assert!(out.status.success(), "reset.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Pelican's Wings stub reports installs as `outcome` (`success` or `fail`): its
    /// `WINGS_STUB_INSTALL`, read when `start.sh` (re)starts it.
    pub fn pelican_installs(&self, outcome: &str) {
        let (Some(dir), Some(bundle)) = (&self.dir, &self.bundle) else {
            panic!("the real Pelican panel at {} is not the layer's own", self.url)
        };
        let out = Command::new("bash")
            .arg(bundle.join("start.sh"))
            .arg("--dir")
            .arg(dir)
            .env("WINGS_STUB_INSTALL", outcome)
            .output()
            .expect("run the real Pelican panel's start.sh");
        assert!(out.status.success(), "start.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Switches the Wings stub of node 1 (takes effect within about 0.3 s).
    pub async fn wings(&self, wings: Wings) {
        let dir = self.dir.as_ref().expect("the real panel's work directory");
        let (down, install) = (dir.join("wings-down"), dir.join("wings-install"));
        let _ = std::fs::remove_file(&down);
        let _ = std::fs::remove_file(&install);
        match wings {
            Wings::Installs => std::fs::write(&install, "success 0.5"),
            Wings::InstallsFail => std::fs::write(&install, "fail 0.5"),
            Wings::Down => std::fs::write(&down, ""),
            Wings::Answers(status) => std::fs::write(&down, status.to_string()),
        }
        .expect("write a Wings stub switch");
        tokio::time::sleep(Duration::from_millis(600)).await;
    }

    /// `fixtures.json` of the layer's panel.
    pub fn fixtures(&self) -> Value {
        let dir = self.dir.as_ref().expect("the real panel's work directory");
        let text = std::fs::read_to_string(dir.join("fixtures.json")).expect("fixtures.json");
        serde_json::from_str(&text).expect("fixtures.json is JSON")
    }

    /// A raw request with the panel's key: status and the body as JSON (`Null` when it is not).
    pub async fn raw(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .request(method.parse().expect("method"), format!("{}/api/application{path}", self.url))
            .bearer_auth(&self.key)
            .header("Accept", "application/json");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("a request to the real panel");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Every server on the panel (id, external id, owner, limits, status), read through its API.
    pub async fn servers(&self) -> Vec<Value> {
        let mut all = Vec::new();
        for page in 1.. {
            let (status, body) = self.raw("GET", &format!("/servers?per_page=100&page={page}"), None).await;
            assert_eq!(status, 200, "{body}");
            let data = body["data"].as_array().cloned().unwrap_or_default();
            all.extend(data.into_iter().map(|s| s["attributes"].clone()));
            if body["meta"]["pagination"]["total_pages"].as_u64().unwrap_or(1) <= page {
                break;
            }
        }
        all
    }

    /// Every user on the panel, read through its API.
    pub async fn users(&self) -> Vec<Value> {
        let (status, body) = self.raw("GET", "/users?per_page=100", None).await;
        assert_eq!(status, 200, "{body}");
        body["data"].as_array().cloned().unwrap_or_default().into_iter().map(|u| u["attributes"].clone()).collect()
    }

    /// The egg called `name` in the panel's catalog: (nest, egg id).
    pub async fn egg(&self, name: &str) -> (String, String) {
        let client = self.client();
        for nest in client.nests().await.expect("nests") {
            if let Some(egg) = client.eggs(&nest.id).await.expect("eggs").into_iter().find(|e| e.name == name) {
                return (nest.id, egg.id);
            }
        }
        panic!("the real panel has no egg {name}")
    }
}
