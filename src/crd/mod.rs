//! The three kinds of `pterobox.io/v1alpha1`: [`GamePanel`], [`GameBox`] and [`GameServer`].
//!
//! Field docs here are what `kubectl explain` shows. Rules that need only the object itself are CEL
//! rules in the schema (the earliest layer that can see them); rules that need another object (the
//! box's budget, its egg list) are checked by the webhook and the controllers.

mod common;
pub mod gamebox;
pub mod gamepanel;
pub mod gameserver;
pub mod reference;
pub mod rules;
pub mod validate;

pub use common::{DeletionPolicy, Flavor, PanelId, Reservation, ResourceTotals, ShortQuantity, Uid, WispApiVersion};
pub use gamebox::{
    Budget, EggOffer, GameBox, GameBoxSpec, GameBoxStatus, LedgerEntry, LedgerState, Owner, OwnerStatus, PerServer,
    ServerBound, Summary, TenantMay,
};
pub use gamepanel::{
    CatalogEgg, CatalogLocation, GamePanel, GamePanelSpec, GamePanelStatus, PanelCatalog, SecretKeyRef,
};
pub use gameserver::{Adopt, GameServer, GameServerSpec, GameServerStatus, PanelRef, ServerResources, ServerState};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The three CRDs, in the order they are printed by `pterobox crds`.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![GamePanel::crd(), GameBox::crd(), GameServer::crd()]
}

/// The CRDs as one multi-document YAML stream (what `pterobox crds` prints and `crds/` holds).
pub fn to_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for crd in all() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}
