//! The generated CRDs stay inside the apiserver's CEL cost budget, with every string and array
//! bounded. A real kube-apiserver refused three of the four CRDs when they were not; this is that
//! rule, checked without a cluster (see `wellbeing_crds::cel_cost` for the arithmetic and where
//! each constant comes from).

use wellbeing_crds::cel_cost::{self, PER_CRD_LIMIT, PER_RULE_LIMIT};

#[test]
fn every_string_and_array_in_every_crd_is_bounded() {
    for crd in wellbeing_crds::all_crds() {
        for version in &crd.spec.versions {
            let schema =
                serde_json::to_value(version.schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap()).unwrap();
            let unbounded = cel_cost::unbounded(&schema);
            assert!(
                unbounded.is_empty(),
                "{}: unbounded strings or arrays (add maxLength / maxItems in crds/src/bounds.rs): {unbounded:?}",
                crd.metadata.name.as_deref().unwrap_or_default()
            );
        }
    }
}

#[test]
fn every_rule_and_every_crd_is_within_the_apiservers_cost_budget() {
    let estimates = cel_cost::estimate_crds(&wellbeing_crds::all_crds()).expect("every rule has a cost model");
    assert_eq!(estimates.len(), 4);
    let mut report = String::new();
    for (crd, costs) in &estimates {
        assert!(!costs.is_empty() || crd.starts_with("secretrequirements"), "{crd} lost its rules");
        for c in costs {
            report.push_str(&format!(
                "{crd} {} {:?}: {} x {} = {}\n",
                c.path, c.rule, c.max_cost, c.cardinality, c.total
            ));
            assert!(
                c.total <= PER_RULE_LIMIT,
                "{crd}: {} rule {:?} costs {} > {PER_RULE_LIMIT}",
                c.path,
                c.rule,
                c.total
            );
        }
        let total = cel_cost::total(costs);
        assert!(total <= PER_CRD_LIMIT, "{crd}: all rules cost {total} > {PER_CRD_LIMIT}");
    }
    // Visible with --nocapture: the figures behind the budget.
    println!("{report}");
}

/// The check can fail: the Goal CRD with its bounds stripped is refused the way a real apiserver
/// refused it.
#[test]
fn stripping_the_bounds_from_goals_is_caught() {
    let goal = wellbeing_crds::all_crds().into_iter().find(|c| c.spec.names.kind == "Goal").unwrap();
    let mut schema =
        serde_json::to_value(goal.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap())
            .unwrap();
    strip(&mut schema);
    let costs = cel_cost::estimate_schema(&schema).unwrap();
    let at = costs.iter().find(|c| c.path == "spec.reminders[*].at").expect("the reminder time rule");
    assert!(at.total > 100 * PER_RULE_LIMIT, "{at:?}");
    assert!(cel_cost::unbounded(&schema).contains(&"spec.reminders[*].at".to_string()));
}

fn strip(v: &mut serde_json::Value) {
    if let Some(o) = v.as_object_mut() {
        o.remove("maxLength");
        o.remove("maxItems");
        for child in o.values_mut() {
            strip(child);
        }
    }
}
