//! Manifests as `kubectl apply` takes them (apiVersion/kind/metadata/spec), parsed into the typed
//! resources and checked by the same CEL rules the CRDs carry. Used where no apiserver validates
//! for us: the manifests folder of `wellbeing up`, `wellbeing plugin generate`, and tests.

use kube::{CustomResourceExt, Resource as _};
use serde::de::DeserializeOwned;

use crate::{Goal, Persona, Plugin, SecretRequirement, schedule};

/// One wellbeing.dev object from a manifest file.
#[derive(Clone, Debug, PartialEq)]
pub enum Resource {
    Persona(Persona),
    Goal(Goal),
    Plugin(Plugin),
    SecretRequirement(SecretRequirement),
}

impl Resource {
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::Persona(_) => "Persona",
            Resource::Goal(_) => "Goal",
            Resource::Plugin(_) => "Plugin",
            Resource::SecretRequirement(_) => "SecretRequirement",
        }
    }

    pub fn name(&self) -> String {
        let meta = match self {
            Resource::Persona(r) => r.meta(),
            Resource::Goal(r) => r.meta(),
            Resource::Plugin(r) => r.meta(),
            Resource::SecretRequirement(r) => r.meta(),
        };
        meta.name.clone().unwrap_or_default()
    }
}

/// Why one document of a manifest was refused. `field` is a dotted path such as
/// `spec.checkIns.windows[0].start`, empty when the document as a whole is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("document {document}{}: {reason}", if field.is_empty() { String::new() } else { format!(", field {field}") })]
pub struct ManifestError {
    /// 1-based index of the YAML document in its file.
    pub document: usize,
    pub field: String,
    pub reason: String,
}

fn err(document: usize, field: impl Into<String>, reason: impl Into<String>) -> ManifestError {
    ManifestError { document, field: field.into(), reason: reason.into() }
}

/// Parse every document of a (multi-document) YAML text. Each document gives its own result, so
/// one bad object never hides the good ones. Empty documents are skipped.
///
/// A document kubectl's YAML parser would refuse or read differently (see [`crate::kubectl_yaml`])
/// is refused here too, with its line in the file, so a file that loads here applies with kubectl.
pub fn parse_documents(text: &str) -> Vec<Result<Resource, ManifestError>> {
    let kubectl = kubectl_problems(text);
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let document = i + 1;
        if let Some(problem) = kubectl.get(&document) {
            out.push(Err(err(document, "", problem.clone())));
            continue;
        }
        let value = match serde_yaml::Value::deserialize_from(doc) {
            Ok(serde_yaml::Value::Null) => continue,
            Ok(v) => v,
            Err(e) => {
                out.push(Err(err(document, "", format!("not valid YAML: {e}"))));
                // After a syntax error the deserializer cannot find further documents reliably.
                break;
            }
        };
        out.push(parse_value(document, value));
    }
    out
}

/// kubectl-only YAML problems by 1-based document index, with the line counted in the whole file.
fn kubectl_problems(text: &str) -> std::collections::BTreeMap<usize, String> {
    let mut problems = std::collections::BTreeMap::new();
    let mut document = 1;
    let mut first_line = 0;
    let mut current = String::new();
    let mut saw_content = false;
    let mut flush = |document: usize, first_line: usize, current: &str| {
        if let Err(e) = crate::kubectl_yaml::check(current) {
            problems.insert(document, format!("line {}, column {}: {}", first_line + e.line, e.column, e.reason));
        }
    };
    for (n, line) in text.lines().enumerate() {
        if line == "---" || line.starts_with("--- ") {
            // serde_yaml counts a leading `---` before any content as the start of document 1.
            if saw_content {
                flush(document, first_line, &current);
                document += 1;
            }
            current.clear();
            first_line = n + 1;
            continue;
        }
        if !line.trim().is_empty() && !line.trim_start().starts_with('#') {
            saw_content = true;
        }
        current.push_str(line);
        current.push('\n');
    }
    flush(document, first_line, &current);
    problems
}

trait DeserializeFrom {
    fn deserialize_from(d: serde_yaml::Deserializer<'_>) -> Result<serde_yaml::Value, serde_yaml::Error>;
}

impl DeserializeFrom for serde_yaml::Value {
    fn deserialize_from(d: serde_yaml::Deserializer<'_>) -> Result<serde_yaml::Value, serde_yaml::Error> {
        serde::Deserialize::deserialize(d)
    }
}

fn parse_value(document: usize, value: serde_yaml::Value) -> Result<Resource, ManifestError> {
    let api_version = value.get("apiVersion").and_then(|v| v.as_str()).unwrap_or_default();
    let kind = value.get("kind").and_then(|v| v.as_str()).unwrap_or_default();
    let expected = format!("{}/{}", crate::GROUP, crate::VERSION);
    if api_version != expected {
        return Err(err(document, "apiVersion", format!("expected {expected}, got {api_version:?}")));
    }
    let name_ok =
        value.get("metadata").and_then(|m| m.get("name")).and_then(|n| n.as_str()).is_some_and(is_dns_subdomain);
    if !name_ok {
        return Err(err(document, "metadata.name", "a lowercase DNS name (letters, digits, '-', '.') is required"));
    }
    // The apiserver checks the schema's keywords before anything else; refuse with its words.
    if let Ok(json) = serde_json::to_value(&value) {
        let errors = crate::openapi::validate(kind, &json);
        if let Some(first) = errors.first() {
            let more = errors.len() - 1;
            let reason = if more > 0 { format!("{} (and {more} more)", first.reason) } else { first.reason.clone() };
            return Err(err(document, first.field.clone(), reason));
        }
    }
    match kind {
        "Persona" => {
            let p: Persona = typed(document, value)?;
            // CEL cannot know the IANA database; the operator reports this as ScheduleInvalid,
            // and files are refused up front with the same message.
            if let Err(e) = schedule::time_zone(&p.spec.check_ins.time_zone) {
                return Err(err(document, "spec.checkIns.timeZone", e.to_string()));
            }
            cel(document, &p, Persona::validate_cel)?;
            Ok(Resource::Persona(p))
        }
        "Goal" => {
            let g: Goal = typed(document, value)?;
            cel(document, &g, Goal::validate_cel)?;
            Ok(Resource::Goal(g))
        }
        "Plugin" => {
            let p: Plugin = typed(document, value)?;
            cel(document, &p, Plugin::validate_cel)?;
            Ok(Resource::Plugin(p))
        }
        "SecretRequirement" => {
            let s: SecretRequirement = typed(document, value)?;
            cel(document, &s, SecretRequirement::validate_cel)?;
            Ok(Resource::SecretRequirement(s))
        }
        other => Err(err(
            document,
            "kind",
            format!("unknown kind {other:?}; expected Persona, Goal, Plugin or SecretRequirement"),
        )),
    }
}

fn typed<T: DeserializeOwned>(document: usize, value: serde_yaml::Value) -> Result<T, ManifestError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { String::new() } else { path };
        err(document, field, e.into_inner().to_string())
    })
}

fn cel<T: CustomResourceExt>(
    document: usize,
    obj: &T,
    validate: impl Fn(&T) -> Result<(), kube::core::cel::ValidationErrors>,
) -> Result<(), ManifestError> {
    match validate(obj) {
        Ok(()) => Ok(()),
        Err(errors) => {
            let first = errors.first().map(|e| (e.field_path.clone(), e.message.clone()));
            let (field, reason) = first.unwrap_or_default();
            let more = errors.len().saturating_sub(1);
            let reason = if more > 0 { format!("{reason} (and {more} more)") } else { reason };
            Err(err(document, field, reason))
        }
    }
}

/// RFC 1123 subdomain, as Kubernetes requires for object names.
pub fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERSONA: &str = r#"
apiVersion: wellbeing.dev/v1alpha1
kind: Persona
metadata: {name: coach}
spec:
  displayName: Sunny
  active: true
  checkIns:
    timeZone: Europe/Berlin
    windows: [{start: "09:00", end: "21:00"}]
    perDay: 3
    minGapMinutes: 90
"#;

    #[test]
    fn what_kubectl_refuses_is_refused_with_its_line_and_other_documents_still_load() {
        let text = format!(
            "{PERSONA}---\napiVersion: wellbeing.dev/v1alpha1\nkind: Goal\nmetadata: {{name: water}}\nspec:\n  \
             description: Water\n  pillar: hydration\n  metric: water\n  target: {{count: 6, per: day}}\n  \
             reminders:\n    - {{at: \"16:00\", message: Time for a glass of water?}}\n"
        );
        let r = parse_documents(&text);
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(matches!(r[0], Ok(Resource::Persona(_))), "{:?}", r[0]);
        let e = r[1].as_ref().unwrap_err();
        assert_eq!(e.document, 2);
        assert!(e.reason.starts_with("line 23,") && e.reason.contains("quotes"), "{e}");
    }

    #[test]
    fn good_persona_parses_with_defaults() {
        let r = parse_documents(PERSONA);
        let Ok(Resource::Persona(p)) = &r[0] else { panic!("{r:?}") };
        assert_eq!(p.spec.check_ins.per_day, 3);
        assert_eq!(p.spec.tone, "warm, brief, encouraging");
    }

    #[test]
    fn window_backwards_is_refused_by_the_cel_rule() {
        let text = PERSONA.replace(r#"{start: "09:00", end: "21:00"}"#, r#"{start: "21:00", end: "09:00"}"#);
        let e = parse_documents(&text).remove(0).unwrap_err();
        assert!(e.reason.contains("start must be before its end"), "{e}");
    }

    #[test]
    fn unknown_zone_and_bad_per_day_name_the_field() {
        let e = parse_documents(&PERSONA.replace("Europe/Berlin", "Europe/Atlantis")).remove(0).unwrap_err();
        assert_eq!(e.field, "spec.checkIns.timeZone");
        let e = parse_documents(&PERSONA.replace("perDay: 3", "perDay: 0")).remove(0).unwrap_err();
        assert!(e.reason.contains("perDay"), "{e}");
    }

    #[test]
    fn goal_with_zero_target_or_unknown_period_is_refused() {
        let goal = r#"
apiVersion: wellbeing.dev/v1alpha1
kind: Goal
metadata: {name: workouts}
spec:
  description: Work out 3 times a week
  pillar: physical-activity
  metric: exercise
  target: {count: 3, per: week}
"#;
        assert!(matches!(parse_documents(goal)[0], Ok(Resource::Goal(_))));
        let e = parse_documents(&goal.replace("count: 3", "count: 0")).remove(0).unwrap_err();
        assert!(e.reason.contains("spec.target.count"), "{e}");
        let e = parse_documents(&goal.replace("per: week", "per: fortnight")).remove(0).unwrap_err();
        assert_eq!(e.field, "spec.target.per");
        let e = parse_documents(&goal.replace("metric: exercise", "metric: vibes")).remove(0).unwrap_err();
        assert_eq!(e.field, "spec.metric");
        let e =
            parse_documents(&goal.replace("pillar: physical-activity", "pillar: \"Sleep!!\"")).remove(0).unwrap_err();
        assert!(e.reason.contains("spec.pillar"), "{e}");
    }

    #[test]
    fn plugin_needs_exactly_one_source_and_bad_docs_do_not_hide_good_ones() {
        let text = r#"
apiVersion: wellbeing.dev/v1alpha1
kind: Plugin
metadata: {name: both}
spec:
  description: x
  source:
    python: {module: both/v1.py}
    mcp: {url: "http://127.0.0.1:1/mcp"}
---
apiVersion: wellbeing.dev/v1alpha1
kind: Plugin
metadata: {name: good}
spec:
  description: x
  source:
    python: {module: good/v1.py}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: other}
"#;
        let r = parse_documents(text);
        assert_eq!(r.len(), 3);
        assert!(r[0].as_ref().unwrap_err().reason.contains("exactly one of python or mcp"), "{:?}", r[0]);
        assert!(matches!(r[1], Ok(Resource::Plugin(_))));
        assert_eq!(r[2].as_ref().unwrap_err().field, "apiVersion");
    }
}
