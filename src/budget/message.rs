//! ResourceQuota-style messages: `exceeded budget of box B: requested …, used …, limited …`.

use super::units::{Amounts, Resource};

/// The rejection message, listing only the `exceeded` resources.
pub fn exceeded_message(
    box_name: &str,
    exceeded: &[Resource],
    requested: &Amounts,
    used: &Amounts,
    limited: &Amounts,
) -> String {
    let list = |amounts: &Amounts| {
        exceeded.iter().map(|&r| format!("{r}={}", r.show(amounts.get(r)))).collect::<Vec<_>>().join(",")
    };
    format!(
        "exceeded budget of box {box_name}: requested {}, used {}, limited {}",
        list(requested),
        list(used),
        list(limited)
    )
}

/// The message for a server outside a box's per-server bounds: what it asks for of each resource
/// out of bounds, then the bounds it is `below` (minimum) or `above` (maximum).
pub fn bounds_message(
    box_name: &str,
    requested: &Amounts,
    below: &[(Resource, u64)],
    above: &[(Resource, u64)],
) -> String {
    let list = |items: &[(Resource, u64)], amount: &dyn Fn(Resource, u64) -> u64| {
        items.iter().map(|&(r, b)| format!("{r}={}", r.show(amount(r, b)))).collect::<Vec<_>>().join(",")
    };
    let out: Vec<(Resource, u64)> = below.iter().chain(above).copied().collect();
    let mut text =
        format!("outside the per-server bounds of box {box_name}: requested {}", list(&out, &|r, _| requested.get(r)));
    if !below.is_empty() {
        text.push_str(&format!(", minimum {}", list(below, &|_, b| b)));
    }
    if !above.is_empty() {
        text.push_str(&format!(", maximum {}", list(above, &|_, b| b)));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_exceeded_resource_in_a_fixed_order() {
        let requested = Amounts { memory_mib: 2048, cpu_percent: 150, databases: 2, ..Default::default() };
        let used = Amounts { memory_mib: 8192, cpu_percent: 500, databases: 0, ..Default::default() };
        let limited = Amounts { memory_mib: 8192, cpu_percent: 500, databases: 10, ..Default::default() };
        assert_eq!(
            exceeded_message("basic", &[Resource::Memory, Resource::Cpu], &requested, &used, &limited),
            "exceeded budget of box basic: requested memory=2Gi,cpu=1500m, used memory=8Gi,cpu=5, limited memory=8Gi,cpu=5"
        );
    }

    #[test]
    fn names_each_bound_a_request_is_outside() {
        let requested = Amounts { memory_mib: 512, cpu_percent: 400, disk_mib: 10_240, ..Default::default() };
        let below = [(Resource::Memory, 1024)];
        let above = [(Resource::Cpu, 200)];
        assert_eq!(
            bounds_message("basic", &requested, &below, &above),
            "outside the per-server bounds of box basic: requested memory=512Mi,cpu=4, minimum memory=1Gi, maximum cpu=2"
        );
        assert_eq!(
            bounds_message("basic", &requested, &[], &[(Resource::Disk, 5120)]),
            "outside the per-server bounds of box basic: requested disk=10Gi, maximum disk=5Gi"
        );
    }
}
