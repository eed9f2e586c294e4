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
}
