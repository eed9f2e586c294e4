//! Resource ids as each API version shows them. Pterodactyl and Wisp's v1 media type use integers;
//! Wisp's `application/vnd.wisp.v2+json` answers with a type prefix and a ULID (`user_01kt…`,
//! `node_01kt…`, `alloc_01kt…`: wisp-gg/whmcs `wisp/wisp.php`, `wisp_NormalizeId`, 2026-06), and
//! the same panel still answers v1 requests with the integers. The simulator keeps integers and
//! derives each ULID from one, so either form finds the object.
//!
//! Locations, nests and eggs have string ids under v2 too (`loc_01kt…`, `nest_01kt…`,
//! `egg_01kt…`): the module passes the ids an admin typed through `wisp_NormalizeId`, integers when
//! they are digits and strings otherwise. INFERRED: the prefixes `server_`, `loc_`, `nest_` and
//! `egg_` (the module's comments show `user_`, `node_` and `alloc_`).

/// An object kind that has a prefixed id under Wisp v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Server,
    Node,
    Allocation,
    Location,
    Nest,
    Egg,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Server => "server",
            Kind::Node => "node",
            Kind::Allocation => "alloc",
            Kind::Location => "loc",
            Kind::Nest => "nest",
            Kind::Egg => "egg",
        }
    }
}

/// Crockford's base-32 alphabet, lower-case, as the ULIDs in the module's comments.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Every ULID here starts as a 2026 timestamp does.
const EPOCH: &str = "01kt";
const DIGITS: usize = 22;

/// The v2 id of object `id` of `kind`.
pub fn ulid(kind: Kind, id: u64) -> String {
    let mut digits = [b'0'; DIGITS];
    let mut rest = id;
    for d in digits.iter_mut().rev() {
        *d = ALPHABET[(rest % 32) as usize];
        rest /= 32;
    }
    format!("{}_{EPOCH}{}", kind.prefix(), String::from_utf8_lossy(&digits))
}

/// The integer id in `text`: digits, or the v2 id of a `kind` object.
pub fn parse(kind: Kind, text: &str) -> Option<u64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let digits = text.strip_prefix(kind.prefix())?.strip_prefix('_')?.strip_prefix(EPOCH)?;
    if digits.len() != DIGITS {
        return None;
    }
    digits.bytes().try_fold(0u64, |acc, b| {
        let d = ALPHABET.iter().position(|a| *a == b.to_ascii_lowercase())? as u64;
        acc.checked_mul(32)?.checked_add(d)
    })
}

/// An id as JSON in the version asked for.
pub fn json(kind: Kind, id: u64, v2: bool) -> serde_json::Value {
    if v2 { ulid(kind, id).into() } else { id.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn either_form_finds_the_object() {
        for id in [1, 42, 31, 32, u64::MAX] {
            let text = ulid(Kind::User, id);
            assert!(text.starts_with("user_01kt") && text.len() == "user_".len() + 26, "{text}");
            assert_eq!(parse(Kind::User, &text), Some(id));
            assert_eq!(parse(Kind::User, &id.to_string()), Some(id));
        }
        assert_eq!(parse(Kind::Node, &ulid(Kind::User, 7)), None, "another kind's id");
        for bad in ["", "user_", "user_01kt", "x7", "user_01ktIIIIIIIIIIIIIIIIIIIIII"] {
            assert_eq!(parse(Kind::User, bad), None, "{bad}");
        }
    }
}
