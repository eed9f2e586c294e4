//! Replicas of the operator on one Lease (`lease-<namespace>`), and who holds it.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

use super::operator::{Operator, World};

/// A replica named `name` electing a leader on the Lease of namespace `ns`, lasting `lease_secs`.
pub fn replica(name: &str, ns: &str, lease_secs: u64) -> Operator {
    let (lease, secs) = (format!("lease-{ns}"), lease_secs.to_string());
    Operator::start_with(
        name,
        &["--webhook=false", "--namespace", ns, "--lease-name", &lease, "--lease-duration-secs", &secs],
        None,
    )
}

/// The Lease's holder now.
pub async fn holder<P>(world: &World<P>) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(world.client.clone(), &world.ns);
    leases.get_opt(&format!("lease-{}", world.ns)).await.ok().flatten()?.spec?.holder_identity
}

/// Waits until `want` holds for the Lease's holder (30 s at most), and returns it.
pub async fn wait_holder<P>(world: &World<P>, want: impl Fn(Option<&str>) -> bool, what: &str) -> Option<String> {
    for _ in 0..300 {
        let h = holder(world).await;
        if want(h.as_deref()) {
            return h;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the Lease: {what} did not happen in 30s (holder {:?})", holder(world).await);
}
