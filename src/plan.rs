//! Cartesian expansion of a bench configuration into test instances, ordered so that each
//! model loads once.

use crate::cli::BenchConfig;
use crate::llama::context::ContextSettings;
use crate::llama::workload::Workload;
use crate::record::TestSpec;

/// One test to run: a model (by index into the resolved models), engine settings, workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub model: usize,
    pub settings: ContextSettings,
    pub workload: Workload,
    pub test: TestSpec,
}

/// Every combination of models × engine settings × (depth, prompt, generation), model
/// outermost. A context size of 0 becomes exactly what the test needs.
pub fn expand(cfg: &BenchConfig, n_models: usize) -> Vec<Instance> {
    let mut out = Vec::new();
    for model in 0..n_models {
        for settings in &cfg.contexts {
            for &n_depth in &cfg.n_depth {
                for &n_prompt in &cfg.n_prompt {
                    for &n_gen in &cfg.n_gen {
                        if n_prompt == 0 && n_gen == 0 {
                            continue;
                        }
                        let test = TestSpec {
                            name: TestSpec::name_for(n_prompt, n_gen, n_depth),
                            n_prompt,
                            n_gen,
                            n_depth,
                            repetitions: cfg.repetitions,
                            warmup: cfg.warmup,
                        };
                        let mut settings = settings.clone();
                        if settings.n_ctx == 0 {
                            settings.n_ctx =
                                u32::try_from(test.tokens_needed()).unwrap_or(u32::MAX);
                        }
                        out.push(Instance {
                            model,
                            settings,
                            workload: Workload {
                                n_prompt,
                                n_gen,
                                n_depth,
                            },
                            test,
                        });
                    }
                }
            }
        }
    }
    out
}

/// Checks every instance before anything runs: the context must hold the test's tokens.
pub fn check(instances: &[Instance]) -> Result<(), String> {
    for i in instances {
        let need = i.test.tokens_needed();
        if u64::from(i.settings.n_ctx) < need {
            return Err(format!(
                "context too small: {} needs {need} tokens (depth {} + prompt {} + generated {}), but --ctx is {}",
                i.test.name,
                i.test.n_depth,
                i.test.n_prompt.max(1),
                i.test.n_gen,
                i.settings.n_ctx
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn config(args: &[&str]) -> BenchConfig {
        let mut v = vec!["runner", "bench"];
        v.extend_from_slice(args);
        match Cli::try_parse_from(v).unwrap().command {
            Command::Bench(b) => b.validate(2).unwrap(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn expands_a_product_with_models_outermost() {
        let cfg = config(&[
            "-m",
            "a.gguf,b.gguf",
            "-p",
            "0,64",
            "-n",
            "0,16",
            "-t",
            "1,2",
        ]);
        let plan = expand(&cfg, 2);
        // 2 models x 2 thread counts x 3 workloads (pp0+tg0 is dropped)
        assert_eq!(plan.len(), 12);
        assert!(plan[..6].iter().all(|i| i.model == 0));
        assert!(plan[6..].iter().all(|i| i.model == 1));
        let names: Vec<&str> = plan[..3].iter().map(|i| i.test.name.as_str()).collect();
        assert_eq!(names, ["tg16", "pp64", "pp64+tg16"]);
    }

    #[test]
    fn context_defaults_to_what_the_test_needs() {
        let plan = expand(&config(&["-p", "32", "-n", "16", "-d", "8"]), 1);
        assert_eq!(plan[0].settings.n_ctx, 56);
        let plan = expand(&config(&["-p", "0", "-n", "16"]), 1);
        assert_eq!(plan[0].settings.n_ctx, 17);
        assert!(check(&plan).is_ok());
    }

    #[test]
    fn a_context_too_small_is_refused_up_front() {
        let plan = expand(&config(&["-p", "512", "-n", "128", "--ctx", "256"]), 1);
        let e = check(&plan).unwrap_err();
        assert!(e.contains("context too small") && e.contains("640"), "{e}");
    }
}
