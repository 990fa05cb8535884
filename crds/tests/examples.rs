//! Every manifest in examples/ parses and passes the CRDs' CEL rules, so `kubectl apply -f
//! examples/` and `wellbeing up` never meet a broken sample.

use std::path::Path;

use wellbeing_crds::manifest::{Resource, parse_documents};

fn examples() -> Vec<(String, Vec<Resource>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let mut errors = Vec::new();
    let mut parsed = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        let mut resources = Vec::new();
        for result in parse_documents(&text) {
            match result {
                Ok(r) => resources.push(r),
                Err(e) => errors.push(format!("{name}: {e}")),
            }
        }
        assert!(!resources.is_empty() || !errors.is_empty(), "{name} holds no document");
        parsed.push((name, resources));
    }
    assert!(errors.is_empty(), "examples do not parse:\n{}", errors.join("\n"));
    parsed
}

#[test]
fn every_example_parses_and_the_documented_ones_are_there() {
    let parsed = examples();
    let seen: Vec<String> =
        parsed.iter().flat_map(|(_, rs)| rs.iter().map(|r| format!("{}/{}", r.kind(), r.name()))).collect();
    // The README, NOTES.txt and the e2e suite name these objects; other examples may join them.
    for want in ["Persona/coach", "Goal/workouts", "Goal/hydration", "Plugin/hydration", "Plugin/weather-walks"] {
        assert!(seen.iter().any(|s| s == want), "{want} missing from examples/: {seen:?}");
    }
}

#[test]
fn one_persona_is_active_and_only_weather_walks_waits_for_a_secret() {
    let all: Vec<Resource> = examples().into_iter().flat_map(|(_, rs)| rs).collect();
    for r in &all {
        if let Resource::Plugin(p) = r {
            match r.name().as_str() {
                "weather-walks" => assert_eq!(p.spec.secret_names(), ["openweather-api-key"]),
                "hydration" => assert!(p.spec.secret_names().is_empty()),
                _ => {}
            }
        }
    }
    let active = all.iter().filter(|r| matches!(r, Resource::Persona(p) if p.spec.active)).count();
    assert_eq!(active, 1, "exactly one active Persona per namespace");
}
