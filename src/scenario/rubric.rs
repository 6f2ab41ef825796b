//! A scenario's judging rubric: weighted criteria scored on a scale, read from the scenario
//! file's `[judge]` table (which the scenario parser leaves alone).
//!
//! ```toml
//! [judge]
//! scale = 10                 # scores run from 0 to scale; default 10
//! criteria = [
//!   { name = "correctness", weight = 0.40, description = "The code does what was asked." },
//!   { name = "completeness", weight = 0.35, description = "..." },
//!   { name = "clarity", weight = 0.25, description = "..." },
//! ]
//! ```

use serde::{Deserialize, Serialize};
use std::path::Path;

/// One criterion and its weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    pub name: String,
    pub weight: f64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// The rubric of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rubric {
    #[serde(default = "default_scale")]
    pub scale: f64,
    pub criteria: Vec<Criterion>,
}

fn default_scale() -> f64 {
    10.0
}

impl Default for Rubric {
    /// Used for a scenario without a `[judge]` table.
    fn default() -> Self {
        let c = |name: &str, weight: f64, description: &str| Criterion {
            name: name.into(),
            weight,
            description: description.into(),
        };
        Rubric {
            scale: 10.0,
            criteria: vec![
                c(
                    "instruction_following",
                    0.5,
                    "Does exactly what the task asks, in the form it asks for.",
                ),
                c("correctness", 0.3, "What it states or computes is right."),
                c("clarity", 0.2, "Clear, without padding."),
            ],
        }
    }
}

/// The rubric in a scenario file's `[judge]` table, or the default one when it has none.
pub fn load(path: &Path) -> Result<Rubric, String> {
    let mut table: toml::Table = crate::util::fs::read_toml(path)?;
    let Some(judge) = table.remove("judge") else {
        return Ok(Rubric::default());
    };
    judge
        .try_into()
        .map_err(|e: toml::de::Error| {
            let message = crate::util::toml_error::short_floats(&e.to_string());
            message.replace('\n', " ").trim().to_string()
        })
        .and_then(|rubric: Rubric| rubric.check().map(|()| rubric))
        .map_err(|e| format!("{}: [judge]: {e}", path.display()))
}

impl Rubric {
    /// Criteria named once each, weights positive and finite, a positive scale.
    pub fn check(&self) -> Result<(), String> {
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err("scale must be more than 0".into());
        }
        if self.criteria.is_empty() {
            return Err("no criteria".into());
        }
        for (i, c) in self.criteria.iter().enumerate() {
            if c.name.trim().is_empty() {
                return Err("a criterion has no name".into());
            }
            if !(c.weight.is_finite() && c.weight > 0.0) {
                return Err(format!(
                    "criterion '{}': weight must be more than 0",
                    c.name
                ));
            }
            if self.criteria[..i].iter().any(|o| o.name == c.name) {
                return Err(format!("criterion '{}' is named twice", c.name));
            }
        }
        Ok(())
    }

    /// The weighted mean of the scores (weights need not sum to 1); `None` when a criterion
    /// has no score.
    pub fn weighted_mean(&self, scores: &std::collections::BTreeMap<String, f64>) -> Option<f64> {
        let mut sum = 0.0;
        let mut weights = 0.0;
        for c in &self.criteria {
            sum += scores.get(&c.name)? * c.weight;
            weights += c.weight;
        }
        (weights > 0.0).then(|| sum / weights)
    }

    /// The JSON schema judges are asked to follow: one integer per criterion, and a reason.
    pub fn schema(&self) -> serde_json::Value {
        let score = serde_json::json!({ "type": "integer", "minimum": 0, "maximum": self.scale });
        let mut props: serde_json::Map<String, serde_json::Value> = self
            .criteria
            .iter()
            .map(|c| (c.name.clone(), score.clone()))
            .collect();
        props.insert(
            "rationale".into(),
            serde_json::json!({ "type": "string", "maxLength": 200 }),
        );
        let mut required: Vec<String> = self.criteria.iter().map(|c| c.name.clone()).collect();
        required.push("rationale".into());
        serde_json::json!({ "type": "object", "properties": props, "required": required })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn shipped_scenarios_have_valid_rubrics() {
        let dir = crate::scenario::builtin_dir();
        let coding = load(&dir.join("coding.toml")).unwrap();
        let names: Vec<&str> = coding.criteria.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["correctness", "completeness", "clarity"]);
        for s in ["long-form", "short-response"] {
            load(&dir.join(format!("{s}.toml"))).unwrap();
        }
    }

    #[test]
    fn weighted_mean_and_bad_rubrics() {
        let r = Rubric {
            scale: 10.0,
            criteria: vec![
                Criterion {
                    name: "a".into(),
                    weight: 0.4,
                    description: String::new(),
                },
                Criterion {
                    name: "b".into(),
                    weight: 0.6,
                    description: String::new(),
                },
            ],
        };
        let mut s = BTreeMap::new();
        s.insert("a".to_string(), 10.0);
        assert_eq!(r.weighted_mean(&s), None);
        s.insert("b".to_string(), 5.0);
        assert!((r.weighted_mean(&s).unwrap() - 7.0).abs() < 1e-12);
        let mut bad = r.clone();
        bad.criteria[1].name = "a".into();
        assert!(bad.check().is_err());
        bad.criteria.clear();
        assert!(bad.check().is_err());
    }
}
