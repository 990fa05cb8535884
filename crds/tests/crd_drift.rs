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

#[test]
fn schemas_carry_no_unsigned_formats_and_no_nullable_enums() {
    for (file, yaml) in wellbeing_crds::crd_files() {
        assert!(!yaml.contains("format: uint"), "{file} has an unsigned format the apiserver warns about");
        assert!(!yaml.contains("- null"), "{file} has a nullable enum");
    }
}
