//! The budget engine: pure arithmetic over panel units, with no Kubernetes API or HTTP inside.
//!
//! - [`units`]: quantities → panel units (MiB, percent) and back;
//! - [`admission`]: one admission pass over a box's ledger;
//! - [`message`]: ResourceQuota-style rejection messages;
//! - [`template`]: name and description templates.
//!
//! This module also converts the CRDs' fields into [`Amounts`], naming the field of any bad value.

pub mod admission;
pub mod message;
pub mod template;
pub mod units;

pub use admission::{Bounds, Candidate, Outcome, Verdict, admit};
pub use template::{TemplateError, TemplateVars, render};
pub use units::{Amounts, QuantityError, Resource};

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::crd::{Budget, PerServer, Reservation, ResourceTotals, ServerBound, ServerResources, ShortQuantity};

/// A field whose value cannot be used, e.g. `spec.resources.memory: "abc" is not a quantity`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

type ToUnits = fn(&str) -> Result<u64, QuantityError>;

/// A quantity in panel units (`units::to_mib` or `units::to_percent`).
fn in_units(field: &str, q: &str, to_units: ToUnits) -> Result<u64, FieldError> {
    to_units(q).map_err(|e| FieldError::new(field, e.to_string()))
}

/// A quantity in panel units that must be above zero.
fn positive(field: &str, q: &Quantity, to_units: ToUnits) -> Result<u64, FieldError> {
    match in_units(field, &q.0, to_units)? {
        0 => Err(FieldError::new(field, format!("must be a positive quantity, got {:?}", q.0))),
        value => Ok(value),
    }
}

fn count(field: &str, value: i64, min: i64) -> Result<u64, FieldError> {
    u64::try_from(value)
        .ok()
        .filter(|_| value >= min)
        .ok_or_else(|| FieldError::new(field, format!("must be at least {min}, got {value}")))
}

/// What a server asks for, in panel units (`servers` = 1).
pub fn requested(r: &ServerResources) -> Result<Amounts, FieldError> {
    let f = |name: &str| format!("spec.resources.{name}");
    Ok(Amounts {
        memory_mib: positive(&f("memory"), &r.memory, units::to_mib)?,
        disk_mib: positive(&f("disk"), &r.disk, units::to_mib)?,
        cpu_percent: positive(&f("cpu"), &r.cpu, units::to_percent)?,
        servers: 1,
        databases: count(&f("databases"), r.databases, 0)?,
        allocations: count(&f("allocations"), r.allocations, 1)?,
        backups: count(&f("backups"), r.backups, 0)?,
    })
}

/// A box's budget in panel units.
pub fn limits(b: &Budget) -> Result<Amounts, FieldError> {
    let f = |name: &str| format!("spec.budget.{name}");
    Ok(Amounts {
        memory_mib: positive(&f("memory"), &b.memory, units::to_mib)?,
        disk_mib: positive(&f("disk"), &b.disk, units::to_mib)?,
        cpu_percent: positive(&f("cpu"), &b.cpu, units::to_percent)?,
        servers: count(&f("servers"), b.servers, 1)?,
        databases: count(&f("databases"), b.databases, 0)?,
        allocations: count(&f("allocations"), b.allocations, 0)?,
        backups: count(&f("backups"), b.backups, 0)?,
    })
}

/// A box's per-server bounds (`spec.perServer.min` / `.max`) in panel units.
pub fn bounds(p: &PerServer) -> Result<Bounds, FieldError> {
    let read = |which: &str, bound: &Option<ServerBound>| -> Result<Vec<(Resource, u64)>, FieldError> {
        let Some(b) = bound else { return Ok(Vec::new()) };
        let f = |name: &str| format!("spec.perServer.{which}.{name}");
        let mut out = Vec::new();
        let fields = [(Resource::Memory, &b.memory), (Resource::Disk, &b.disk), (Resource::Cpu, &b.cpu)];
        for (r, q) in fields {
            if let Some(q) = q {
                let to_units: ToUnits = if r == Resource::Cpu { units::to_percent } else { units::to_mib };
                out.push((r, positive(&f(r.name()), q, to_units)?));
            }
        }
        Ok(out)
    };
    let bounds = Bounds { min: read("min", &p.min)?, max: read("max", &p.max)? };
    for (r, low) in &bounds.min {
        if let Some((_, high)) = bounds.max.iter().find(|(m, _)| m == r)
            && low > high
        {
            let shown = format!("{} is above max.{} {}", r.show(*low), r.name(), r.show(*high));
            return Err(FieldError::new(format!("spec.perServer.min.{}", r.name()), shown));
        }
    }
    Ok(bounds)
}

/// A ledger reservation read back into panel units (`servers` = 1).
pub fn reserved(r: &Reservation) -> Result<Amounts, FieldError> {
    let f = |name: &str| format!("status.servers[].reserved.{name}");
    Ok(Amounts {
        memory_mib: in_units(&f("memory"), &r.memory.0, units::to_mib)?,
        disk_mib: in_units(&f("disk"), &r.disk.0, units::to_mib)?,
        cpu_percent: in_units(&f("cpu"), &r.cpu.0, units::to_percent)?,
        servers: 1,
        databases: count(&f("databases"), r.databases, 0)?,
        allocations: count(&f("allocations"), r.allocations, 0)?,
        backups: count(&f("backups"), r.backups, 0)?,
    })
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A reservation as users read it.
pub fn to_reservation(a: &Amounts) -> Reservation {
    Reservation {
        memory: ShortQuantity(units::mib_to_quantity(a.memory_mib).into()),
        disk: ShortQuantity(units::mib_to_quantity(a.disk_mib).into()),
        cpu: ShortQuantity(units::percent_to_quantity(a.cpu_percent).into()),
        databases: signed(a.databases),
        allocations: signed(a.allocations),
        backups: signed(a.backups),
    }
}

/// Totals as users read them.
pub fn to_totals(a: &Amounts) -> ResourceTotals {
    ResourceTotals {
        memory: Quantity(units::mib_to_quantity(a.memory_mib)),
        disk: Quantity(units::mib_to_quantity(a.disk_mib)),
        cpu: Quantity(units::percent_to_quantity(a.cpu_percent)),
        servers: signed(a.servers),
        databases: signed(a.databases),
        allocations: signed(a.allocations),
        backups: signed(a.backups),
    }
}

/// A budget that is exactly these amounts.
pub fn to_budget(a: &Amounts) -> Budget {
    let t = to_totals(a);
    Budget {
        memory: t.memory,
        disk: t.disk,
        cpu: t.cpu,
        servers: t.servers,
        databases: t.databases,
        allocations: t.allocations,
        backups: t.backups,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(memory: &str, cpu: &str) -> ServerResources {
        ServerResources {
            memory: Quantity(memory.into()),
            disk: Quantity("10Gi".into()),
            cpu: Quantity(cpu.into()),
            databases: 1,
            allocations: 2,
            backups: 0,
        }
    }

    #[test]
    fn a_request_is_converted_to_panel_units() {
        let a = requested(&resources("4Gi", "1500m")).unwrap();
        assert_eq!((a.memory_mib, a.disk_mib, a.cpu_percent, a.servers, a.allocations), (4096, 10240, 150, 1, 2));
    }

    #[test]
    fn a_bad_request_names_its_field_and_value() {
        let err = requested(&resources("abc", "1")).unwrap_err();
        assert_eq!(err.field, "spec.resources.memory");
        assert!(err.to_string().contains("\"abc\""), "{err}");
        let err = requested(&resources("1Gi", "-2")).unwrap_err();
        assert_eq!(err.to_string(), "spec.resources.cpu: \"-2\" is negative");
        let err = requested(&resources("0", "1")).unwrap_err();
        assert_eq!(err.field, "spec.resources.memory");
        let mut r = resources("1Gi", "1");
        r.allocations = 0;
        assert_eq!(requested(&r).unwrap_err().to_string(), "spec.resources.allocations: must be at least 1, got 0");
    }

    #[test]
    fn reservations_round_trip() {
        let a = requested(&resources("1536Mi", "250m")).unwrap();
        assert_eq!(reserved(&to_reservation(&a)).unwrap(), a);
    }
}
