//! Names and labels of the objects the operator creates.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// The one field manager of every write the operator makes (children and status).
pub const FIELD_MANAGER: &str = "wellbeing-operator";

pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_PERSONA: &str = "wellbeing.dev/persona";
pub const LABEL_SLOT: &str = "wellbeing.dev/slot";
pub const LABEL_PLUGIN: &str = "wellbeing.dev/plugin";

/// Selector matching everything the operator manages, for the watches on children.
pub fn managed_selector() -> String {
    format!("{LABEL_MANAGED_BY}={FIELD_MANAGER}")
}

/// Labels every child carries.
pub fn common_labels(component: &str, instance: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_string(), FIELD_MANAGER.to_string()),
        (LABEL_PART_OF.to_string(), "wellbeing".to_string()),
        (LABEL_COMPONENT.to_string(), component.to_string()),
        (LABEL_INSTANCE.to_string(), truncate_label(instance)),
    ])
}

fn short_hash(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..4])
}

/// Label values are at most 63 characters; object names can be longer.
pub fn truncate_label(value: &str) -> String {
    if value.len() <= 63 {
        return value.to_string();
    }
    let hash = short_hash(value);
    let keep = &value[..63 - hash.len() - 1];
    format!("{}-{hash}", keep.trim_end_matches(['-', '.']))
}

/// `<base>-<suffix>`, shortened to `max` characters with a hash of `base` when too long, so
/// different long bases never collide (CronJob names, for example, must fit in 52).
pub fn child_name(base: &str, suffix: &str, max: usize) -> String {
    let full = format!("{base}-{suffix}");
    if full.len() <= max {
        return full;
    }
    let hash = short_hash(base);
    let room = max.saturating_sub(suffix.len() + hash.len() + 2);
    let keep = base[..room.min(base.len())].trim_end_matches(['-', '.']);
    format!("{keep}-{hash}-{suffix}")
}

/// Name of the SecretRequirement for a secret id. Secret ids allow upper case and '_', object
/// names do not; an id that is already a valid name is used as is, any other gets a hash suffix
/// so that `API_KEY` and `api-key` stay two requirements.
pub fn requirement_name(secret_id: &str) -> String {
    let mut name: String = secret_id
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            'a'..='z' | '0'..='9' | '-' => c,
            _ => '-',
        })
        .collect();
    name = name.trim_matches('-').to_string();
    if name == secret_id && !name.is_empty() && name.len() <= 253 {
        return name;
    }
    let hash = short_hash(secret_id);
    name.truncate(253 - hash.len() - 1);
    let name = name.trim_end_matches('-');
    if name.is_empty() { format!("secret-{hash}") } else { format!("{name}-{hash}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirement_names_are_valid_and_distinct() {
        assert_eq!(requirement_name("openweather-api-key"), "openweather-api-key");
        let a = requirement_name("API_KEY");
        let b = requirement_name("api-key");
        assert_ne!(a, b);
        assert!(a.starts_with("api-key-"), "{a}");
        assert!(requirement_name("___").starts_with("secret-"));
        let long = requirement_name(&"A".repeat(255));
        assert!(long.len() <= 253, "{}", long.len());
        for n in [a, b, long] {
            assert!(n.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'), "{n}");
            assert!(!n.starts_with('-') && !n.ends_with('-'), "{n}");
        }
    }

    #[test]
    fn child_names_fit() {
        assert_eq!(child_name("morning", "checkin-0", 52), "morning-checkin-0");
        let long = "a".repeat(100);
        let n = child_name(&long, "checkin-11", 52);
        assert!(n.len() <= 52, "{n}");
        assert!(n.ends_with("-checkin-11"));
        assert_ne!(n, child_name(&format!("{long}b"), "checkin-11", 52));
    }

    #[test]
    fn labels_fit() {
        assert_eq!(truncate_label("short"), "short");
        let t = truncate_label(&"x".repeat(200));
        assert_eq!(t.len(), 63);
    }
}
