//! The apiserver's static cost estimate of a CRD's CEL rules, so a CRD the apiserver would refuse
//! fails a test here instead of an install on a cluster.
//!
//! When a CRD is created or updated, `apiextensions-apiserver` compiles every
//! `x-kubernetes-validations` rule, estimates its worst-case cost with cel-go's checker
//! (`checker/cost.go`), multiplies it by how many times the rule's node can occur in one object,
//! and refuses the CRD when one rule exceeds [`PER_RULE_LIMIT`] or all rules together exceed
//! [`PER_CRD_LIMIT`]. This module follows the same arithmetic for the expressions our CRDs use:
//!
//! - sizes come from the schema (`apiserver/pkg/cel/common/schemas.go`): a string with
//!   `maxLength` holds at most 4 bytes per character (`maxLength * 4`); without it, a whole
//!   request (`3 MiB - 2`); an array with `maxItems` that many items, without it
//!   `(3 MiB - 2) / (minSize(item) + 1)`; string literals their length; scalars 1;
//! - costs (`cel-go/checker/cost.go`): constants 0, identifiers 1, a field select 1 plus its
//!   operand (`has()` 0), `&&` / `||` the sum of both sides, `matches` `ceil((len + 1) * 0.1) *
//!   ceil(len(regex) * 0.25)`, string comparisons `ceil(min(len) * 0.1)`, every other call 1, each
//!   plus the cost of its arguments;
//! - cardinality (`apiextensions-apiserver/pkg/apiserver/schema/cel/compilation.go` and
//!   `validation.go`): the product of `maxItems` of every array above the rule's node; when one of
//!   them has none, `3 MiB / (minSize(node) + 1)`.
//!
//! An expression shape this module has no cost for (comprehensions, unknown functions) is an
//! error, not a guess: extend the model from cel-go's source before using it in a rule.

use std::collections::BTreeMap;

use cel::common::ast::{Expr, IdedExpr, LiteralValue};
use serde_json::Value;

/// `StaticEstimatedCostLimit` in apiextensions-apiserver's validation: one rule's estimate.
pub const PER_RULE_LIMIT: u64 = 10_000_000;
/// `StaticEstimatedCRDCostLimit`: all rules of one version's schema together.
pub const PER_CRD_LIMIT: u64 = 100_000_000;
/// `MaxRequestSizeBytes` in apiserver's CEL limits: 3 MiB.
pub const MAX_REQUEST_SIZE_BYTES: u64 = 3 * 1024 * 1024;
/// `StringTraversalCostFactor` in cel-go's `common/cost.go`.
const STRING_TRAVERSAL_COST_FACTOR: f64 = 0.1;
/// `RegexStringLengthCostFactor` in cel-go's `common/cost.go`.
const REGEX_STRING_LENGTH_COST_FACTOR: f64 = 0.25;

/// One rule's estimate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleCost {
    /// JSON path of the schema node carrying the rule, e.g. `spec.reminders[*].at`.
    pub path: String,
    pub rule: String,
    /// Worst-case cost of one evaluation.
    pub max_cost: u64,
    /// How many times the node may occur in one object.
    pub cardinality: u64,
    /// `max_cost * cardinality`, what the apiserver compares with [`PER_RULE_LIMIT`].
    pub total: u64,
}

/// A schema the apiserver would refuse, or one this model cannot cost.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CostError {
    #[error("{path}: rule {rule:?} does not parse: {reason}")]
    Parse { path: String, rule: String, reason: String },
    #[error("{path}: rule {rule:?}: no cost model for {what} (extend cel_cost from cel-go's checker/cost.go)")]
    Unsupported { path: String, rule: String, what: String },
}

/// Every rule of an `openAPIV3Schema` with its estimate, in schema order.
pub fn estimate_schema(schema: &Value) -> Result<Vec<RuleCost>, CostError> {
    let mut out = Vec::new();
    walk(schema, "", Some(1), &mut out)?;
    Ok(out)
}

/// Sum of all rule totals, saturating as the apiserver's does.
pub fn total(costs: &[RuleCost]) -> u64 {
    costs.iter().fold(0u64, |sum, c| sum.saturating_add(c.total))
}

/// Every string without `maxLength` (or `enum`, or a fixed-size format) and every array without
/// `maxItems`, by path. The apiserver costs such a value as if it filled a whole request.
pub fn unbounded(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    find_unbounded(schema, "", &mut out);
    out
}

fn find_unbounded(node: &Value, path: &str, out: &mut Vec<String>) {
    match node.get("type").and_then(Value::as_str) {
        Some("string") if node.get("maxLength").is_none() && node.get("enum").is_none() && !fixed_format(node) => {
            out.push(display(path))
        }
        Some("array") if node.get("maxItems").is_none() => out.push(display(path)),
        _ => {}
    }
    for (name, child) in properties(node) {
        find_unbounded(child, &join(path, name), out);
    }
    if let Some(items) = node.get("items") {
        find_unbounded(items, &format!("{path}[*]"), out);
    }
}

fn fixed_format(node: &Value) -> bool {
    matches!(node.get("format").and_then(Value::as_str), Some("date" | "date-time" | "duration"))
}

fn walk(node: &Value, path: &str, cardinality: Option<u64>, out: &mut Vec<RuleCost>) -> Result<(), CostError> {
    if let Some(rules) = node.get("x-kubernetes-validations").and_then(Value::as_array) {
        let cardinality = cardinality.unwrap_or_else(|| MAX_REQUEST_SIZE_BYTES / (min_size(node) + 1));
        for rule in rules.iter().filter_map(|r| r.get("rule").and_then(Value::as_str)) {
            let max_cost = rule_cost(node, path, rule)?;
            out.push(RuleCost {
                path: display(path),
                rule: rule.to_string(),
                max_cost,
                cardinality,
                total: max_cost.saturating_mul(cardinality),
            });
        }
    }
    for (name, child) in properties(node) {
        walk(child, &join(path, name), cardinality, out)?;
    }
    if let Some(items) = node.get("items") {
        let below = match (cardinality, node.get("maxItems").and_then(Value::as_u64)) {
            (Some(c), Some(max)) => Some(c.saturating_mul(max)),
            _ => None,
        };
        walk(items, &format!("{path}[*]"), below, out)?;
    }
    Ok(())
}

fn properties(node: &Value) -> impl Iterator<Item = (&String, &Value)> {
    node.get("properties").and_then(Value::as_object).into_iter().flat_map(|m| m.iter())
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}

fn display(path: &str) -> String {
    if path.is_empty() { "<root>".to_string() } else { path.to_string() }
}

/// `estimateMinSizeJSON`: the smallest JSON text a value of this schema serializes to.
fn min_size(node: &Value) -> u64 {
    match node.get("type").and_then(Value::as_str) {
        Some("string") => 2,
        Some("boolean") => 4,
        Some("integer" | "number") => 1,
        Some("array") => 2,
        Some("object") => {
            let required: Vec<&str> = node
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let props = properties(node)
                .filter(|(name, p)| required.contains(&name.as_str()) && p.get("default").is_none())
                .map(|(name, p)| name.len() as u64 + min_size(p) + 4)
                .sum::<u64>();
            2 + props
        }
        _ => 1,
    }
}

/// Largest size (characters of a string, items of a list) of a value of this schema.
fn max_size(node: &Value) -> u64 {
    match node.get("type").and_then(Value::as_str) {
        Some("string") => {
            if let Some(max) = node.get("maxLength").and_then(Value::as_u64) {
                max.saturating_mul(4)
            } else if let Some(values) = node.get("enum").and_then(Value::as_array) {
                values.iter().filter_map(Value::as_str).map(|s| s.len() as u64).max().unwrap_or(0)
            } else {
                MAX_REQUEST_SIZE_BYTES - 2
            }
        }
        Some("array") => match node.get("maxItems").and_then(Value::as_u64) {
            Some(max) => max,
            None => {
                let item = node.get("items").map(min_size).unwrap_or(1);
                (MAX_REQUEST_SIZE_BYTES - 2) / (item + 1)
            }
        },
        Some("object") => u64::MAX,
        _ => 1,
    }
}

/// What an expression evaluates to, as far as cost is concerned.
enum Operand<'a> {
    /// A value of the schema: `self` or a field of it.
    Schema(&'a Value),
    /// A literal string of this length.
    Literal(u64),
    /// Anything of constant size (numbers, booleans, results of comparisons).
    Scalar,
}

impl Operand<'_> {
    fn size(&self) -> u64 {
        match self {
            Operand::Schema(node) => max_size(node),
            Operand::Literal(len) => *len,
            Operand::Scalar => 1,
        }
    }
}

struct Coster<'a> {
    root: &'a Value,
    path: &'a str,
    rule: &'a str,
}

fn rule_cost(node: &Value, path: &str, rule: &str) -> Result<u64, CostError> {
    let ast = cel::parser::Parser::new().parse(rule).map_err(|e| CostError::Parse {
        path: display(path),
        rule: rule.to_string(),
        reason: e.to_string(),
    })?;
    let coster = Coster { root: node, path, rule };
    coster.cost(&ast)
}

fn factor(size: u64, factor: f64) -> u64 {
    (size as f64 * factor).ceil() as u64
}

impl<'a> Coster<'a> {
    fn unsupported(&self, what: impl Into<String>) -> CostError {
        CostError::Unsupported { path: display(self.path), rule: self.rule.to_string(), what: what.into() }
    }

    fn operand(&self, e: &IdedExpr) -> Operand<'a> {
        match &e.expr {
            Expr::Ident(name) if name == "self" => Operand::Schema(self.root),
            Expr::Select(sel) if !sel.test => match self.operand(&sel.operand) {
                Operand::Schema(node) => match node.get("properties").and_then(|p| p.get(&sel.field)) {
                    Some(child) => Operand::Schema(child),
                    None => Operand::Scalar,
                },
                _ => Operand::Scalar,
            },
            Expr::Literal(LiteralValue::String(s)) => Operand::Literal(s.inner().len() as u64),
            _ => Operand::Scalar,
        }
    }

    fn is_object(&self, e: &IdedExpr) -> bool {
        matches!(self.operand(e), Operand::Schema(n) if n.get("type").and_then(Value::as_str) == Some("object"))
    }

    fn cost(&self, e: &IdedExpr) -> Result<u64, CostError> {
        match &e.expr {
            Expr::Literal(_) => Ok(0),
            Expr::Ident(_) => Ok(1),
            Expr::Select(sel) => {
                if sel.test {
                    return Ok(0);
                }
                let operand = self.cost(&sel.operand)?;
                Ok(operand + u64::from(self.is_object(&sel.operand)))
            }
            Expr::Call(call) => {
                let mut sum = 0u64;
                for arg in &call.args {
                    sum = sum.saturating_add(self.cost(arg)?);
                }
                if let Some(target) = &call.target {
                    sum = sum.saturating_add(self.cost(target)?);
                }
                let function = match call.func_name.as_str() {
                    "_&&_" | "_||_" => 0,
                    "matches" => {
                        let (Some(target), [regex]) = (&call.target, call.args.as_slice()) else {
                            return Err(self.unsupported("matches() in global form"));
                        };
                        let string =
                            factor(self.operand(target).size().saturating_add(1), STRING_TRAVERSAL_COST_FACTOR);
                        let regex = factor(self.operand(regex).size(), REGEX_STRING_LENGTH_COST_FACTOR);
                        string.saturating_mul(regex)
                    }
                    "_<_" | "_<=_" | "_>_" | "_>=_" | "_==_" | "_!=_" => {
                        let [lhs, rhs] = call.args.as_slice() else {
                            return Err(self.unsupported(format!(
                                "{} with {} arguments",
                                call.func_name,
                                call.args.len()
                            )));
                        };
                        let smallest = self.operand(lhs).size().min(self.operand(rhs).size());
                        factor(smallest, STRING_TRAVERSAL_COST_FACTOR)
                    }
                    "size" | "!_" | "-_" | "_+_" | "_-_" | "_*_" | "_/_" | "_%_" | "int" | "string" => 1,
                    other => return Err(self.unsupported(format!("function {other}"))),
                };
                Ok(sum.saturating_add(function))
            }
            Expr::Comprehension(_) => Err(self.unsupported("comprehensions (all, exists, map, filter)")),
            Expr::List(_) | Expr::Map(_) | Expr::Struct(_) => Err(self.unsupported("list, map or struct literals")),
            Expr::Unspecified => Err(self.unsupported("an empty expression")),
        }
    }
}

/// Estimates for each CRD version's schema, keyed by "<crd name>/<version>".
pub fn estimate_crds(
    crds: &[k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition],
) -> Result<BTreeMap<String, Vec<RuleCost>>, CostError> {
    let mut out = BTreeMap::new();
    for crd in crds {
        for version in &crd.spec.versions {
            let Some(schema) = version.schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()) else { continue };
            let value = serde_json::to_value(schema).expect("a JSON schema serializes");
            let name = format!("{}/{}", crd.metadata.name.clone().unwrap_or_default(), version.name);
            out.insert(name, estimate_schema(&value)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const HHMM_RULE: &str = "self.matches('^([01][0-9]|2[0-3]):[0-5][0-9]$')";

    fn reminders(max_items: Option<u64>, max_length: Option<u64>) -> Value {
        let mut at = json!({"type": "string", "x-kubernetes-validations": [{"rule": HHMM_RULE}]});
        if let Some(m) = max_length {
            at["maxLength"] = json!(m);
        }
        let mut list =
            json!({"type": "array", "items": {"type": "object", "required": ["at"], "properties": {"at": at}}});
        if let Some(m) = max_items {
            list["maxItems"] = json!(m);
        }
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"reminders": list}}}})
    }

    #[test]
    fn unbounded_regex_inside_unbounded_list_is_over_budget_by_more_than_100x() {
        // What a real apiserver refused: `goals.wellbeing.dev` ... reminders.items.properties[at]
        // "estimated rule cost exceeds budget by factor of more than 100x".
        let costs = estimate_schema(&reminders(None, None)).unwrap();
        assert_eq!(costs.len(), 1);
        assert_eq!(costs[0].path, "spec.reminders[*].at");
        assert!(costs[0].total > 100 * PER_RULE_LIMIT, "{costs:?}");
        assert_eq!(unbounded(&reminders(None, None)), vec!["spec.reminders", "spec.reminders[*].at"]);
    }

    #[test]
    fn bounded_regex_costs_what_cel_go_says() {
        let costs = estimate_schema(&reminders(Some(24), Some(5))).unwrap();
        // strCost ceil((5*4 + 1) * 0.1) = 3; regexCost ceil(31 * 0.25) = 8; +1 for `self`.
        assert_eq!(costs[0].max_cost, 3 * 8 + 1);
        assert_eq!(costs[0].cardinality, 24);
        assert_eq!(costs[0].total, 25 * 24);
        assert!(unbounded(&reminders(Some(24), Some(5))).is_empty());
    }

    #[test]
    fn a_bounded_string_in_an_unbounded_list_still_multiplies_by_request_size() {
        let costs = estimate_schema(&reminders(None, Some(5))).unwrap();
        // The rule's own node (a string, at least `""`: 2 bytes) could repeat 3 MiB / 3 times.
        assert_eq!(costs[0].cardinality, MAX_REQUEST_SIZE_BYTES / 3);
    }

    #[test]
    fn string_comparison_costs_the_shorter_side() {
        let schema = json!({"type": "object",
            "properties": {"start": {"type": "string", "maxLength": 5}, "end": {"type": "string"}},
            "x-kubernetes-validations": [{"rule": "self.start < self.end"}]});
        let costs = estimate_schema(&schema).unwrap();
        // Two selects on an object (1 + 1 each) and ceil(20 * 0.1) for the comparison.
        assert_eq!(costs[0].max_cost, 2 + 2 + 2);
    }

    #[test]
    fn shapes_without_a_cost_model_are_errors() {
        let schema = json!({"type": "array", "maxItems": 3, "items": {"type": "string", "maxLength": 3},
            "x-kubernetes-validations": [{"rule": "self.all(x, x != 'a')"}]});
        let e = estimate_schema(&schema).unwrap_err();
        assert!(matches!(e, CostError::Unsupported { .. }), "{e}");
    }
}
