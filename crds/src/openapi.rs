//! The OpenAPI part of the apiserver's validation of a custom resource (types, enums, required
//! fields, lengths, item counts, patterns, numeric bounds), against the schema the CRDs carry, with
//! the apiserver's wording, so `wellbeing up` refuses what `kubectl apply` would.
//!
//! CEL rules are checked separately (kube's `validate_cel`); this covers the keywords.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;

/// One refusal: a dotted field path (`spec.reminders[0].at`) and the apiserver's kind of message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

/// The `openAPIV3Schema` of each kind, as JSON.
fn schemas() -> &'static BTreeMap<String, Value> {
    static SCHEMAS: OnceLock<BTreeMap<String, Value>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        crate::all_crds()
            .into_iter()
            .filter_map(|crd| {
                let schema = crd.spec.versions.first()?.schema.as_ref()?.open_api_v3_schema.as_ref()?;
                Some((crd.spec.names.kind.clone(), serde_json::to_value(schema).ok()?))
            })
            .collect()
    })
}

/// Validate an object of `kind` (the whole manifest as JSON). Only `spec` is checked: metadata
/// has its own rules and status is never applied from a file.
pub fn validate(kind: &str, object: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(schema) = schemas().get(kind) else { return errors };
    if let (Some(spec_schema), Some(spec)) = (schema.pointer("/properties/spec"), object.get("spec")) {
        check(spec_schema, spec, "spec", &mut errors);
    }
    errors
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn quoted(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn push(errors: &mut Vec<FieldError>, field: &str, reason: String) {
    errors.push(FieldError { field: field.to_string(), reason: format!("{field}: {reason}") });
}

fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    if value.is_null() && schema.get("nullable").and_then(Value::as_bool) == Some(true) {
        return;
    }
    if let Some(expected) = schema.get("type").and_then(Value::as_str) {
        let actual = type_name(value);
        let ok = actual == expected || (expected == "number" && actual == "integer");
        if !ok {
            push(
                errors,
                path,
                format!("Invalid value: \"{actual}\": {path} in body must be of type {expected}: \"{actual}\""),
            );
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list = allowed.iter().map(quoted).collect::<Vec<_>>().join(", ");
        push(errors, path, format!("Unsupported value: {}: supported values: {list}", quoted(value)));
    }
    match value {
        Value::String(s) => {
            let chars = s.chars().count() as u64;
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && chars > max
            {
                push(errors, path, format!("Too long: may not be more than {max} bytes"));
            }
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && chars < min
            {
                push(errors, path, format!("Invalid value: {s:?}: {path} in body should be at least {min} chars long"));
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                match regex::Regex::new(pattern) {
                    Ok(re) if !re.is_match(s) => {
                        push(errors, path, format!("Invalid value: {s:?}: {path} in body should match '{pattern}'"))
                    }
                    _ => {}
                }
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or_default();
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && x < min
            {
                push(
                    errors,
                    path,
                    format!("Invalid value: {n}: {path} in body should be greater than or equal to {min}"),
                );
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && x > max
            {
                push(errors, path, format!("Invalid value: {n}: {path} in body should be less than or equal to {max}"));
            }
        }
        Value::Array(items) => {
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && items.len() as u64 > max
            {
                push(errors, path, format!("Too many: {}: must have at most {max} items", items.len()));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::Object(map) => {
            for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
                if let Some(name) = required.as_str()
                    && !map.contains_key(name)
                {
                    push(errors, &format!("{path}.{name}"), "Required value".to_string());
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            for (name, child) in map {
                if let Some(child_schema) = properties.and_then(|p| p.get(name)) {
                    check(child_schema, child, &format!("{path}.{name}"), errors);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn lengths_counts_enums_and_required_fields_are_refused_with_the_apiservers_words() {
        let long = "x".repeat(501);
        let goal = json!({"spec": {"description": long, "pillar": "sleep", "metric": "vibes",
            "target": {"per": "week"}, "reminders": (0..25).map(|_| json!({"at": "09:00"})).collect::<Vec<_>>()}});
        let errors = validate("Goal", &goal);
        let reasons: Vec<&str> = errors.iter().map(|e| e.reason.as_str()).collect();
        assert!(reasons.contains(&"spec.description: Too long: may not be more than 500 bytes"), "{reasons:?}");
        assert!(reasons.contains(&"spec.reminders: Too many: 25: must have at most 24 items"), "{reasons:?}");
        assert!(reasons.iter().any(|r| r.starts_with("spec.metric: Unsupported value: \"vibes\"")), "{reasons:?}");
        assert!(reasons.contains(&"spec.target.count: Required value"), "{reasons:?}");
    }

    #[test]
    fn a_valid_spec_passes_and_types_are_checked() {
        let ok = json!({"spec": {"description": "Walk", "pillar": "physical-activity", "metric": "exercise",
            "target": {"count": 3, "per": "week"}}});
        assert_eq!(validate("Goal", &ok), vec![]);
        let bad = json!({"spec": {"description": "Walk", "pillar": "p", "metric": "exercise",
            "target": {"count": "three", "per": "week"}}});
        let errors = validate("Goal", &bad);
        assert_eq!(errors[0].field, "spec.target.count");
        assert!(errors[0].reason.contains("must be of type integer"), "{errors:?}");
    }

    #[test]
    fn patterns_are_checked() {
        let persona = json!({"spec": {"displayName": "A", "checkIns": {"timeZone": "UTC",
            "windows": [{"start": "9:00", "end": "21:00"}]}}});
        let errors = validate("Persona", &persona);
        assert!(
            errors.iter().any(|e| e.field == "spec.checkIns.windows[0].start" && e.reason.contains("should match")),
            "{errors:?}"
        );
    }
}
