//! Quantities → panel units: memory, disk and swap in MiB (rounded up), cpu in percent (rounded up).
//!
//! Kubernetes quantities are exact decimals; so is this arithmetic (integer fractions, no floats).

use std::fmt;

const MIB: i128 = 1024 * 1024;

/// A quantity that cannot be turned into panel units.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("{value:?} is not a quantity (expected e.g. 4Gi, 512Mi, 1500m or 2)")]
    Unparseable { value: String },
    #[error("{value:?} is negative")]
    Negative { value: String },
    #[error("{value:?} is too large")]
    TooLarge { value: String },
}

/// An exact non-negative decimal: `numerator / denominator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Exact {
    numerator: i128,
    denominator: i128,
}

impl Exact {
    fn ceil_div(self, unit: i128) -> Option<u64> {
        let den = self.denominator.checked_mul(unit)?;
        let q = self.numerator.checked_add(den - 1)? / den;
        u64::try_from(q).ok()
    }
}

/// Parses a Kubernetes quantity (`<number><suffix>`: binary Ki..Ei, decimal m/k/M..E, or `e<exp>`).
fn parse(value: &str) -> Result<Exact, QuantityError> {
    let unparseable = || QuantityError::Unparseable { value: value.to_string() };
    let too_large = || QuantityError::TooLarge { value: value.to_string() };
    let s = value.trim();
    let (negative, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let number_len = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_len);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if int_part.is_empty() && frac_part.is_empty() || frac_part.contains('.') {
        return Err(unparseable());
    }
    let digits = format!("{int_part}{frac_part}");
    if digits.len() > 30 {
        return Err(too_large());
    }
    let mut numerator: i128 = digits.parse().map_err(|_| unparseable())?;
    let mut denominator: i128 = 10i128.pow(frac_part.len() as u32);
    let pow = |base: i128, exp: u32| base.checked_pow(exp).ok_or_else(too_large);
    let (multiplier, divisor) = match suffix {
        "" => (1, 1),
        "Ki" => (pow(1024, 1)?, 1),
        "Mi" => (pow(1024, 2)?, 1),
        "Gi" => (pow(1024, 3)?, 1),
        "Ti" => (pow(1024, 4)?, 1),
        "Pi" => (pow(1024, 5)?, 1),
        "Ei" => (pow(1024, 6)?, 1),
        "m" => (1, 1000),
        "k" => (pow(10, 3)?, 1),
        "M" => (pow(10, 6)?, 1),
        "G" => (pow(10, 9)?, 1),
        "T" => (pow(10, 12)?, 1),
        "P" => (pow(10, 15)?, 1),
        "E" => (pow(10, 18)?, 1),
        exp if exp.starts_with(['e', 'E']) => {
            let e: i32 = exp[1..].parse().map_err(|_| unparseable())?;
            if e.unsigned_abs() > 18 {
                return Err(too_large());
            }
            if e >= 0 { (pow(10, e as u32)?, 1) } else { (1, pow(10, e.unsigned_abs())?) }
        }
        _ => return Err(unparseable()),
    };
    numerator = numerator.checked_mul(multiplier).ok_or_else(too_large)?;
    denominator = denominator.checked_mul(divisor).ok_or_else(too_large)?;
    if negative && numerator != 0 {
        return Err(QuantityError::Negative { value: value.to_string() });
    }
    // Kubernetes caps quantities at 2^63-1 in magnitude.
    if numerator / denominator > i64::MAX as i128 {
        return Err(too_large());
    }
    Ok(Exact { numerator, denominator })
}

/// Bytes → MiB, rounded up.
pub fn to_mib(value: &str) -> Result<u64, QuantityError> {
    parse(value)?.ceil_div(MIB).ok_or_else(|| QuantityError::TooLarge { value: value.to_string() })
}

/// Cores → percent of one core, rounded up (`1` = 100, `1500m` = 150).
pub fn to_percent(value: &str) -> Result<u64, QuantityError> {
    let exact = parse(value)?;
    let scaled = Exact { numerator: exact.numerator.checked_mul(100).unwrap_or(i128::MAX), ..exact };
    scaled.ceil_div(1).ok_or_else(|| QuantityError::TooLarge { value: value.to_string() })
}

/// MiB shown back as a quantity: the largest binary suffix that is exact.
pub fn mib_to_quantity(mib: u64) -> String {
    match mib {
        0 => "0".to_string(),
        m if m.is_multiple_of(1024 * 1024) => format!("{}Ti", m / (1024 * 1024)),
        m if m.is_multiple_of(1024) => format!("{}Gi", m / 1024),
        m => format!("{m}Mi"),
    }
}

/// Percent shown back as cores: `200` → `2`, `150` → `1500m`.
pub fn percent_to_quantity(percent: u64) -> String {
    if percent.is_multiple_of(100) { format!("{}", percent / 100) } else { format!("{}m", percent * 10) }
}

/// The resources of the budget arithmetic, in a fixed order (the order messages use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Memory,
    Disk,
    Cpu,
    Servers,
    Databases,
    Allocations,
    Backups,
}

impl Resource {
    pub const ALL: [Resource; 7] = [
        Resource::Memory,
        Resource::Disk,
        Resource::Cpu,
        Resource::Servers,
        Resource::Databases,
        Resource::Allocations,
        Resource::Backups,
    ];

    /// The name users see (`memory`, `cpu`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Resource::Memory => "memory",
            Resource::Disk => "disk",
            Resource::Cpu => "cpu",
            Resource::Servers => "servers",
            Resource::Databases => "databases",
            Resource::Allocations => "allocations",
            Resource::Backups => "backups",
        }
    }

    /// An amount of this resource, in panel units, shown as users write it.
    pub fn show(self, amount: u64) -> String {
        match self {
            Resource::Memory | Resource::Disk => mib_to_quantity(amount),
            Resource::Cpu => percent_to_quantity(amount),
            _ => amount.to_string(),
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Amounts of every resource, in panel units (MiB, percent, counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Amounts {
    pub memory_mib: u64,
    pub disk_mib: u64,
    pub cpu_percent: u64,
    pub servers: u64,
    pub databases: u64,
    pub allocations: u64,
    pub backups: u64,
}

impl Amounts {
    pub fn get(&self, r: Resource) -> u64 {
        match r {
            Resource::Memory => self.memory_mib,
            Resource::Disk => self.disk_mib,
            Resource::Cpu => self.cpu_percent,
            Resource::Servers => self.servers,
            Resource::Databases => self.databases,
            Resource::Allocations => self.allocations,
            Resource::Backups => self.backups,
        }
    }

    pub fn set(&mut self, r: Resource, amount: u64) {
        *self.get_mut(r) = amount;
    }

    fn get_mut(&mut self, r: Resource) -> &mut u64 {
        match r {
            Resource::Memory => &mut self.memory_mib,
            Resource::Disk => &mut self.disk_mib,
            Resource::Cpu => &mut self.cpu_percent,
            Resource::Servers => &mut self.servers,
            Resource::Databases => &mut self.databases,
            Resource::Allocations => &mut self.allocations,
            Resource::Backups => &mut self.backups,
        }
    }

    /// `self + other`, saturating (amounts come from validated quantities far below u64::MAX).
    pub fn plus(&self, other: &Amounts) -> Amounts {
        let mut out = *self;
        for r in Resource::ALL {
            *out.get_mut(r) = self.get(r).saturating_add(other.get(r));
        }
        out
    }

    /// `self - other`, floored at zero: per resource, how much `self` exceeds `other`.
    pub fn minus(&self, other: &Amounts) -> Amounts {
        let mut out = *self;
        for r in Resource::ALL {
            *out.get_mut(r) = self.get(r).saturating_sub(other.get(r));
        }
        out
    }

    /// The larger of `self` and `other`, per resource.
    pub fn max(&self, other: &Amounts) -> Amounts {
        let mut out = *self;
        for r in Resource::ALL {
            *out.get_mut(r) = self.get(r).max(other.get(r));
        }
        out
    }

    /// The resources where `self` is above `limit`.
    pub fn over(&self, limit: &Amounts) -> Vec<Resource> {
        Resource::ALL.into_iter().filter(|&r| self.get(r) > limit.get(r)).collect()
    }

    /// The resources where `self` has reached `limit` (nothing more fits).
    pub fn reached(&self, limit: &Amounts) -> Vec<Resource> {
        Resource::ALL.into_iter().filter(|&r| self.get(r) >= limit.get(r)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_rounds_up_to_whole_mib() {
        assert_eq!(to_mib("4Gi"), Ok(4096));
        assert_eq!(to_mib("512Mi"), Ok(512));
        assert_eq!(to_mib("1"), Ok(1));
        assert_eq!(to_mib("1.5Gi"), Ok(1536));
        assert_eq!(to_mib("1G"), Ok(954)); // 10^9 bytes = 953.67 MiB
        assert_eq!(to_mib("1048577"), Ok(2));
        assert_eq!(to_mib("0"), Ok(0));
        assert_eq!(to_mib("1e9"), Ok(954));
        assert_eq!(to_mib("100m"), Ok(1));
    }

    #[test]
    fn cpu_rounds_up_to_whole_percent() {
        assert_eq!(to_percent("5"), Ok(500));
        assert_eq!(to_percent("1500m"), Ok(150));
        assert_eq!(to_percent("0.25"), Ok(25));
        assert_eq!(to_percent("1m"), Ok(1));
        assert_eq!(to_percent("15m"), Ok(2));
        assert_eq!(to_percent("2.001"), Ok(201));
    }

    #[test]
    fn bad_quantities_are_errors_that_show_the_value() {
        for bad in ["abc", "", "1.2.3", "5Gb", "Gi", ".", "1e", "--1", "1 Gi"] {
            let err = to_mib(bad).expect_err(bad);
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
        assert_eq!(to_mib("-1Gi"), Err(QuantityError::Negative { value: "-1Gi".into() }));
        assert!(matches!(to_mib("99999999999Ei"), Err(QuantityError::TooLarge { .. })));
        assert!(matches!(to_percent("1e30"), Err(QuantityError::TooLarge { .. })));
    }

    #[test]
    fn units_show_back_as_quantities() {
        assert_eq!(mib_to_quantity(8192), "8Gi");
        assert_eq!(mib_to_quantity(1536), "1536Mi");
        assert_eq!(mib_to_quantity(1024 * 1024), "1Ti");
        assert_eq!(percent_to_quantity(500), "5");
        assert_eq!(percent_to_quantity(150), "1500m");
        assert_eq!(percent_to_quantity(0), "0");
    }

    proptest::proptest! {
        #[test]
        fn shown_units_parse_back_to_the_same_units(mib in 0u64..1 << 40, percent in 0u64..1 << 30) {
            proptest::prop_assert_eq!(to_mib(&mib_to_quantity(mib)), Ok(mib));
            proptest::prop_assert_eq!(to_percent(&percent_to_quantity(percent)), Ok(percent));
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,24}") {
            let _ = to_mib(&s);
            let _ = to_percent(&s);
        }
    }
}
