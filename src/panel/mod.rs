//! What the operator does on a panel: one trait, [`Panel`], implemented over HTTP by [`Client`] in
//! two dialects, [`pterodactyl::Pterodactyl`] (application API 1.x) and [`wisp::Wisp`] (Wisp
//! application API). Each dialect absorbs its panel's quirks, so the controllers see one model. The
//! simulator that speaks either API is a product of its own: [`crate::sim`].

pub mod acl;
mod client;
mod decode;
mod error;
mod http;
pub mod informer;
mod limiter;
mod model;
pub mod pelican;
pub mod pterodactyl;
pub mod seats;
mod snapshot;
pub mod wisp;

use std::sync::Arc;
use std::time::Duration;

pub use client::{Client, Dialect};
pub use decode::StateFields;
pub use error::PanelError;
pub use http::{ApiKey, HttpSettings, TlsTrust};
pub use limiter::{Limiter, MAX_PAUSE};
pub use model::*;

use crate::crd::{Flavor, WispApiVersion};

/// The result of a panel call.
pub type Result<T> = std::result::Result<T, PanelError>;

/// The servers page size the operator asks for: large pages keep a resync cheap.
pub const LIST_PAGE_SIZE: u32 = 100;

/// Everything the operator does on a panel.
#[async_trait::async_trait]
pub trait Panel: Send + Sync {
    /// Which API this is.
    fn flavor(&self) -> Flavor;
    /// The panel's base URL (for links in statuses).
    fn base_url(&self) -> &str;

    /// A user by its external id (exact).
    async fn user_by_external_id(&self, external_id: &str) -> Result<Option<PanelUser>>;
    /// A user whose e-mail is exactly `email` (the panels only offer fuzzy search).
    async fn user_by_email(&self, email: &str) -> Result<Option<PanelUser>>;
    /// Creates a user.
    async fn create_user(&self, user: &NewUser) -> Result<PanelUser>;
    /// A user by its panel id, or `None`.
    async fn user(&self, id: &str) -> Result<Option<PanelUser>>;

    /// Every location.
    async fn locations(&self) -> Result<Vec<Location>>;
    /// Every game node, with its location.
    async fn nodes(&self) -> Result<Vec<Node>>;
    /// Every nest.
    async fn nests(&self) -> Result<Vec<Nest>>;
    /// The eggs of a nest (without variables).
    async fn eggs(&self, nest: &str) -> Result<Vec<Egg>>;
    /// One egg with its variables.
    async fn egg(&self, nest: &str, egg: &str) -> Result<Egg>;

    /// One page of servers (1-based), with their allocations.
    async fn servers_page(&self, page: u32, per_page: u32) -> Result<Page<PanelServer>>;
    /// Whether [`Panel::newest_servers`] can answer.
    fn lists_newest_first(&self) -> bool;
    /// A page (1-based) of servers, newest (highest id) first, with their allocations; `None` where
    /// the panel cannot sort so (Wisp: unknown).
    async fn newest_servers(&self, page: u32, per_page: u32) -> Result<Option<Vec<PanelServer>>>;
    /// A page of servers (1-based) with their text, for `pterobox import`.
    async fn described_servers(&self, page: u32, per_page: u32) -> Result<Page<(PanelServer, ServerText)>>;
    /// A server by its panel id.
    async fn server(&self, id: &str) -> Result<PanelServer>;
    /// A server by its external id (exact), or `None`.
    async fn server_by_external_id(&self, external_id: &str) -> Result<Option<PanelServer>>;
    /// Creates a server with automatic placement (`deploy`).
    async fn create_server(&self, server: &NewServer) -> Result<PanelServer>;
    /// Creates a server on the allocations of `placement` (no `deploy`).
    async fn create_server_at(&self, server: &NewServer, placement: &Placement) -> Result<PanelServer>;
    /// The allocations of a node that no server holds, of ports `lo..=hi` when given.
    async fn free_allocations(&self, node: &str, ports: Option<(u16, u16)>) -> Result<Vec<Allocation>>;
    /// Assigns free allocations of its node to a server (a build update that keeps the rest as
    /// `current` has it); answers the server read again, with its allocations.
    async fn add_allocations(&self, current: &PanelServer, add: &[String]) -> Result<PanelServer>;
    /// Replaces the build (limits, feature limits), keeping the primary allocation.
    async fn update_build(&self, id: &str, build: &Build) -> Result<PanelServer>;
    /// Replaces the details (name, description, owner, external id).
    async fn update_details(&self, id: &str, details: &Details) -> Result<PanelServer>;
    /// Replaces the startup (command, image, every variable).
    async fn update_startup(&self, id: &str, startup: &Startup) -> Result<PanelServer>;
    /// Suspends a server (no-op when suspended).
    async fn suspend(&self, id: &str) -> Result<()>;
    /// Unsuspends a server (no-op when not suspended).
    async fn unsuspend(&self, id: &str) -> Result<()>;
    /// Deletes a server; one that is already gone counts as deleted.
    async fn delete_server(&self, id: &str) -> Result<()>;
    /// Deletes a server even when its game node fails (`/force`: the node may keep its files);
    /// one that is already gone counts as deleted. Only `pterobox conformance` cleans up so.
    async fn force_delete_server(&self, id: &str) -> Result<()>;
    /// Deletes a user (the panels refuse one who owns servers); one already gone counts as deleted.
    /// The operator never does; `pterobox conformance` removes its throwaway user.
    async fn delete_user(&self, id: &str) -> Result<()>;

    /// The permissions the operator needs (`acl::NEEDED`) that the key lacks, described. Each is
    /// tried with a harmless request: a read of one item, or a write of an empty body, which the
    /// panel refuses with a 403 without the write bit and with a 422 with it (the permission check
    /// comes before validation). Allocations are read as a server's include, hidden (not refused)
    /// from a key that may not read them; on a panel without servers, through a node's.
    async fn missing_permissions(&self) -> Result<Vec<String>>;

    /// Every server, page by page: `visit` gets each page's servers as they arrive, so that a
    /// caller can keep them in its own form without holding the whole listing twice.
    async fn each_server_page(&self, visit: &mut (dyn FnMut(Vec<PanelServer>) + Send)) -> Result<()> {
        let mut page = 1;
        loop {
            let p = self.servers_page(page, LIST_PAGE_SIZE).await?;
            let last = p.total_pages <= page || p.items.is_empty();
            visit(p.items);
            if last {
                return Ok(());
            }
            page = next_page(page, "GET /servers")?;
        }
    }
}

/// The most pages a list may have: a panel that claims more (or keeps answering full pages) is
/// broken or hostile, and following it would never end.
pub const MAX_LIST_PAGES: u32 = 1_000;

/// The page after `page`, or an error past [`MAX_LIST_PAGES`].
pub(crate) fn next_page(page: u32, what: &str) -> Result<u32> {
    if page >= MAX_LIST_PAGES {
        return Err(PanelError::Unexpected {
            status: 200,
            message: format!("{what}: the panel lists more than {MAX_LIST_PAGES} pages"),
        });
    }
    Ok(page + 1)
}

/// A client for a panel of the given flavor (Wisp: the v1 media type).
pub fn connect(flavor: Flavor, settings: HttpSettings) -> Result<Arc<dyn Panel>> {
    connect_with(flavor, WispApiVersion::V1, settings)
}

/// A client for a panel of the given flavor; `wisp` chooses the media type of a Wisp panel.
pub fn connect_with(flavor: Flavor, wisp: WispApiVersion, settings: HttpSettings) -> Result<Arc<dyn Panel>> {
    Ok(match (flavor, wisp) {
        (Flavor::Pterodactyl, _) => Arc::new(Client::<pterodactyl::Pterodactyl>::new(settings)?),
        (Flavor::Wisp, WispApiVersion::V1) => Arc::new(Client::<wisp::Wisp<false>>::new(settings)?),
        (Flavor::Wisp, WispApiVersion::V2) => Arc::new(Client::<wisp::Wisp<true>>::new(settings)?),
        (Flavor::Pelican, _) => Arc::new(Client::<pelican::Pelican>::new(settings)?),
    })
}

/// The default HTTP timeout of one panel request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
