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

pub use admission::{Candidate, Outcome, Verdict, admit};
pub use template::{TemplateError, TemplateVars, render};
pub use units::{Amounts, QuantityError, Resource};

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::crd::{Budget, Reservation, ResourceTotals, ServerResources};

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

fn mib(field: &str, q: &Quantity) -> Result<u64, FieldError> {
    units::to_mib(&q.0).map_err(|e| FieldError::new(field, e.to_string()))
}

fn percent(field: &str, q: &Quantity) -> Result<u64, FieldError> {
    units::to_percent(&q.0).map_err(|e| FieldError::new(field, e.to_string()))
}

fn count(field: &str, value: i64, min: i64) -> Result<u64, FieldError> {
    if value < min {
        return Err(FieldError::new(field, format!("must be at least {min}, got {value}")));
    }
    u64::try_from(value).map_err(|_| FieldError::new(field, format!("must be at least {min}, got {value}")))
}

fn positive(field: &str, value: u64, shown: &Quantity) -> Result<u64, FieldError> {
    if value == 0 {
        return Err(FieldError::new(field, format!("must be a positive quantity, got {:?}", shown.0)));
    }
    Ok(value)
}

/// What a server asks for, in panel units (`servers` = 1).
pub fn requested(resources: &ServerResources) -> Result<Amounts, FieldError> {
    const P: &str = "spec.resources";
    Ok(Amounts {
        memory_mib: positive(
            &format!("{P}.memory"),
            mib(&format!("{P}.memory"), &resources.memory)?,
            &resources.memory,
        )?,
        disk_mib: positive(&format!("{P}.disk"), mib(&format!("{P}.disk"), &resources.disk)?, &resources.disk)?,
        cpu_percent: positive(&format!("{P}.cpu"), percent(&format!("{P}.cpu"), &resources.cpu)?, &resources.cpu)?,
        servers: 1,
        databases: count(&format!("{P}.databases"), resources.databases, 0)?,
        allocations: count(&format!("{P}.allocations"), resources.allocations, 1)?,
        backups: count(&format!("{P}.backups"), resources.backups, 0)?,
    })
}

/// A box's budget in panel units.
pub fn limits(budget: &Budget) -> Result<Amounts, FieldError> {
    const P: &str = "spec.budget";
    Ok(Amounts {
        memory_mib: positive(&format!("{P}.memory"), mib(&format!("{P}.memory"), &budget.memory)?, &budget.memory)?,
        disk_mib: positive(&format!("{P}.disk"), mib(&format!("{P}.disk"), &budget.disk)?, &budget.disk)?,
        cpu_percent: positive(&format!("{P}.cpu"), percent(&format!("{P}.cpu"), &budget.cpu)?, &budget.cpu)?,
        servers: count(&format!("{P}.servers"), budget.servers, 1)?,
        databases: count(&format!("{P}.databases"), budget.databases, 0)?,
        allocations: count(&format!("{P}.allocations"), budget.allocations, 0)?,
        backups: count(&format!("{P}.backups"), budget.backups, 0)?,
    })
}

/// A ledger reservation read back into panel units (`servers` = 1).
pub fn reserved(reservation: &Reservation) -> Result<Amounts, FieldError> {
    const P: &str = "status.servers[].reserved";
    Ok(Amounts {
        memory_mib: mib(&format!("{P}.memory"), &reservation.memory)?,
        disk_mib: mib(&format!("{P}.disk"), &reservation.disk)?,
        cpu_percent: percent(&format!("{P}.cpu"), &reservation.cpu)?,
        servers: 1,
        databases: count(&format!("{P}.databases"), reservation.databases, 0)?,
        allocations: count(&format!("{P}.allocations"), reservation.allocations, 0)?,
        backups: count(&format!("{P}.backups"), reservation.backups, 0)?,
    })
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A reservation as users read it.
pub fn to_reservation(a: &Amounts) -> Reservation {
    Reservation {
        memory: Quantity(units::mib_to_quantity(a.memory_mib)),
        disk: Quantity(units::mib_to_quantity(a.disk_mib)),
        cpu: Quantity(units::percent_to_quantity(a.cpu_percent)),
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
