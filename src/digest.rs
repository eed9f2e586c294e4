//! Digests: text kept as a hash where it is only ever compared.

/// Text the operator only ever compares with the text it wants (a panel server's name,
/// description, startup command, image, variables), kept as a hash: as text, these strings were
/// most of the memory of a 10,000-server snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(u64);

impl Digest {
    pub fn of(text: &str) -> Self {
        use std::hash::{Hash, Hasher};
        // Fixed keys: the same text hashes the same within the process, whichever map it is in.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut h);
        Self(h.finish())
    }

    /// The digest of a value's JSON (for types that derive `Serialize` but not `Hash`).
    pub fn of_json(value: &impl serde::Serialize) -> Self {
        Self::of(&serde_json::to_string(value).unwrap_or_default())
    }
}

impl From<&str> for Digest {
    fn from(text: &str) -> Self {
        Self::of(text)
    }
}
