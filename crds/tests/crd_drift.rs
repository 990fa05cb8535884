//! The checked-in CRD YAML must be exactly what the Rust types generate.

use std::path::Path;

#[test]
fn checked_in_crds_match_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/wellbeing/crds");
    let mut stale = Vec::new();
    for (file, yaml) in wellbeing_crds::crd_files() {
        let path = dir.join(&file);
        match std::fs::read_to_string(&path) {
            Ok(on_disk) if on_disk == yaml => {}
            Ok(_) => stale.push(format!("{file} differs")),
            Err(e) => stale.push(format!("{file}: {e}")),
        }
    }
    assert!(stale.is_empty(), "CRDs out of date ({}); run `cargo run -p wellbeing -- crdgen`", stale.join(", "));
}

/// The wellbeing-crds chart (how CRD upgrades reach clusters) renders copies of the same files.
#[test]
fn crds_chart_copies_match_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/wellbeing-crds/files");
    let expected: Vec<(String, String)> = wellbeing_crds::crd_files();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("charts/wellbeing-crds/files exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut names: Vec<String> = expected.iter().map(|(f, _)| f.clone()).collect();
    names.sort();
    assert_eq!(on_disk, names, "charts/wellbeing-crds/files holds other files; run `make generate`");
    for (file, yaml) in expected {
        let copy = std::fs::read_to_string(dir.join(&file)).unwrap();
        assert!(copy == yaml, "charts/wellbeing-crds/files/{file} differs; run `make generate`");
    }
}

#[test]
fn schemas_carry_no_unsigned_formats_and_no_nullable_enums() {
    for (file, yaml) in wellbeing_crds::crd_files() {
        assert!(!yaml.contains("format: uint"), "{file} has an unsigned format the apiserver warns about");
        assert!(!yaml.contains("- null"), "{file} has a nullable enum");
    }
}

/// `kubectl apply -f charts/wellbeing/crds/` reads these with go-yaml v2.
#[test]
fn crd_files_parse_as_kubectl_parses_them() {
    for (file, yaml) in wellbeing_crds::crd_files() {
        if let Err(e) = wellbeing_crds::kubectl_yaml::check(&yaml) {
            panic!("{file}: {e}");
        }
    }
}
