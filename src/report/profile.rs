//! The text rendering of a profile report.

use super::table::{opt, pct};
use super::MIB;
use crate::engine::profile::Category;
use crate::measure::routing::{
    timing::CategoryReport, Breakdown, ExpertStats, RoutingPhase, RoutingSummary,
};
use crate::record::profile::{ModelProfile, Phase, PhaseReport, ProfileReport};
use std::fmt::Write;

/// The whole report as text.
pub fn render(r: &ProfileReport) -> String {
    let mut out = String::new();
    header(&mut out, r);
    timing(&mut out, "decode", &r.model);
    if let Some(d) = &r.dense {
        timing(&mut out, "dense reference", d);
    }
    categories(&mut out, &r.model);
    top_nodes(&mut out, &r.model);
    if let Some(e) = &r.model.experts {
        experts(&mut out, e);
    }
    if let Some(s) = &r.routing {
        routing(&mut out, s);
    }
    for n in &r.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}

fn describe(m: &ModelProfile) -> String {
    let i = &m.model;
    // A synthetic model as bench's table names it: its catalogue entry, marked, with the
    // layers kept when they are not all.
    let name = match &i.synthetic {
        Some(s) => s.label(i.file_name.trim_end_matches(".gguf")),
        None => i.file_name.clone(),
    };
    let kind = match (i.expert_count, i.expert_used_count) {
        (Some(n), Some(k)) => format!("MoE, {n} experts, {k} used per token"),
        _ => "dense".to_string(),
    };
    let origin = m.upcycled.as_ref().map_or(String::new(), |u| {
        format!(
            ", upcycled from {} with a {} router",
            u.source_name, u.router
        )
    });
    format!(
        "{name} ({}, {:.1}M params, {kind}{origin})",
        i.architecture,
        i.n_params as f64 / 1e6,
    )
}

fn header(out: &mut String, r: &ProfileReport) {
    let e = &r.engine;
    let _ = writeln!(out, "model      {}", describe(&r.model));
    if let (Some(d), Some(src)) = (&r.dense, &r.dense_source) {
        let _ = writeln!(out, "dense ref  {} from {src}", describe(d));
    }
    let _ = writeln!(
        out,
        "engine     {} threads, flash-attn {}, n_ctx {}, n_batch {}; {}",
        e.threads, e.flash_attn, e.n_ctx, e.n_batch, r.build.llama_cpp
    );
    // Busy figures are marked as bench's table marks them, and said why.
    let busy = match r.load.busy {
        true => " (busy!): the figures are suspect",
        false => "",
    };
    let _ = writeln!(
        out,
        "load       other processes: {:.2} cores on average (peak {:.2}){busy}\n",
        r.load.during_other_cores_mean, r.load.during_other_cores_max
    );
}

fn timing(out: &mut String, title: &str, m: &ModelProfile) {
    let _ = writeln!(
        out,
        "{title:<22} tok/call calls depth   plain ms   prof. ms plain t/s prof. t/s prof./plain coverage"
    );
    for p in &m.phases {
        let coverage = p
            .breakdown
            .as_ref()
            .map_or("-".to_string(), |b| pct(b.coverage));
        let _ = writeln!(
            out,
            "{:<22} {:>8} {:>5} {:>5} {:>10.3} {:>10.3} {:>9.1} {:>9.1} {:>11.3} {:>8}",
            p.phase.as_str(),
            p.tokens_per_call,
            p.calls,
            p.depth,
            p.unprofiled_ms,
            p.profiled_ms,
            p.unprofiled_tps,
            p.profiled_tps,
            p.perturbation,
            coverage
        );
    }
    out.push('\n');
}

fn categories(out: &mut String, m: &ModelProfile) {
    let phases: Vec<&PhaseReport> = m.phases.iter().filter(|p| p.breakdown.is_some()).collect();
    if phases.is_empty() {
        return;
    }
    let names = phases.iter().map(|p| p.phase.as_str().to_string());
    let bytes_head = " weights MiB/t   KV MiB/t";
    breakdown_row(out, "op category (ms/tok)", names, bytes_head);
    let present = |c| {
        phases
            .iter()
            .any(|p| p.breakdown.as_ref().and_then(|b| find(b, c)).is_some())
    };
    let long = m.phase(Phase::LongForm).and_then(|p| p.breakdown.as_ref());
    for c in Category::ALL.iter().copied().filter(|&c| present(c)) {
        let cells = phases.iter().map(|p| {
            let r = p.breakdown.as_ref().and_then(|b| find(b, c));
            r.map_or("-".to_string(), |r| cell(r.ms_per_token, r.share))
        });
        let r = long.and_then(|b| find(b, c));
        let bytes = r.map_or((0.0, 0.0), |r| {
            (r.weight_bytes_per_token, r.kv_bytes_per_token)
        });
        breakdown_row(out, c.label(), cells, &mib_per_token(bytes));
    }
    totals(out, &phases, long);
    out.push('\n');
}

/// The label of the breakdown's last row: the profiled token time, over all calls.
const MEASURED: &str = "measured (prof. mean)";

/// A row's milliseconds per token and share of the token time, from a breakdown.
type Total = fn(&Breakdown) -> (f64, f64);

/// The rows under the categories: time outside graph nodes, and the measured token time.
fn totals(out: &mut String, phases: &[&PhaseReport], long: Option<&Breakdown>) {
    let cells = |f: Total| {
        phases.iter().map(move |p| {
            let (ms, share) = p.breakdown.as_ref().map_or((0.0, 0.0), f);
            cell(ms, share)
        })
    };
    let outside = cells(|b| {
        let ms = b.measured_ms_per_token - b.node_ms_per_token;
        (ms, 1.0 - b.coverage)
    });
    breakdown_row(out, "outside graph nodes", outside, "");
    let bytes = long.map_or((0.0, 0.0), |b| {
        (b.weight_bytes_per_token, b.kv_bytes_per_token)
    });
    // The mean call, which the categories' times add up to (the timing table above gives the
    // median).
    let measured = cells(|b| (b.measured_ms_per_token, 1.0));
    breakdown_row(out, MEASURED, measured, &mib_per_token(bytes));
}

/// One line of the breakdown: its label, a cell per phase, then `tail`.
fn breakdown_row(out: &mut String, label: &str, cells: impl Iterator<Item = String>, tail: &str) {
    let _ = write!(out, "{label:<22}");
    for c in cells {
        let _ = write!(out, " {c:>20}");
    }
    let _ = writeln!(out, "{tail}");
}

/// Category `c`'s row of a breakdown.
fn find(b: &Breakdown, c: Category) -> Option<&CategoryReport> {
    b.categories.iter().find(|r| r.category == c)
}

/// Milliseconds per token and share of the token time, as one cell.
fn cell(ms: f64, share: f64) -> String {
    format!("{ms:.3} {:>7}", pct(share))
}

/// Weight and KV MiB read per token, under their headers.
fn mib_per_token((weights, kv): (f64, f64)) -> String {
    format!(" {:>13.2} {:>10.2}", weights / MIB, kv / MIB)
}

fn top_nodes(out: &mut String, m: &ModelProfile) {
    let Some(p) = m.phase(Phase::LongForm).filter(|p| !p.top_nodes.is_empty()) else {
        return;
    };
    out.push_str(
        "top nodes (long-form)        op             category                  ms/tok nodes/tok\n",
    );
    for n in &p.top_nodes {
        let _ = writeln!(
            out,
            "{:<28} {:<14} {:<22} {:>9.3} {:>9.1}",
            n.name,
            n.op,
            n.category.label(),
            n.ms_per_token,
            n.nodes_per_token
        );
    }
    out.push('\n');
}

fn experts(out: &mut String, e: &ExpertStats) {
    let _ = writeln!(
        out,
        "expert selection over {} long-form tokens: reuse from the previous token {} (a uniform \
         random router: {:.2}); distinct experts per {} tokens {} of {} (uniform: {:.2})",
        e.tokens,
        opt(e.reuse_share, 2),
        e.uniform_reuse_share,
        e.window,
        opt(e.distinct_mean, 2),
        e.n_expert,
        e.uniform_distinct
    );
    out.push_str("layer   reuse  distinct      max  usage per expert\n");
    for l in &e.layers {
        let usage: Vec<String> = l.usage.iter().map(u64::to_string).collect();
        let _ = writeln!(
            out,
            "{:<6} {:>6} {:>9} {:>8}  {}",
            l.layer,
            opt(l.reuse_share, 2),
            opt(l.distinct_mean, 2),
            l.distinct_max.map_or("-".to_string(), |m| m.to_string()),
            usage.join(" ")
        );
    }
    if e.invalid_ids > 0 {
        let _ = writeln!(
            out,
            "({} selected ids were outside the expert range)",
            e.invalid_ids
        );
    }
    out.push('\n');
}

fn routing(out: &mut String, s: &RoutingSummary) {
    out.push_str(
        "routing overhead         router  experts      mix   MoE ms   MoE MiB  dense ms dense MiB  overhead    share\n",
    );
    let row = |name: &str, p: &RoutingPhase| {
        let o = p.overhead.as_ref();
        format!(
            "{:<22} {:>8} {:>8} {:>8} {:>8.3} {:>9.2} {:>9} {:>9} {:>9} {:>8}",
            name,
            pct(p.router_share),
            pct(p.experts_share),
            pct(p.expert_mix_share),
            p.ms_per_token,
            p.bytes_per_token / MIB,
            o.map_or("-".into(), |o| format!("{:.3}", o.dense_ms)),
            o.map_or("-".into(), |o| format!("{:.2}", o.dense_bytes / MIB)),
            o.map_or("-".into(), |o| format!("{:.3}", o.overhead_ms)),
            o.map_or("-".into(), |o| pct(o.share)),
        )
    };
    for (name, p) in [("short-response", &s.short), ("long-form", &s.long)] {
        if let Some(p) = p {
            let _ = writeln!(out, "{}", row(name, p));
        }
    }
    let _ = writeln!(
        out,
        "(router/experts/mix: shares of the profiled token time; overhead = MoE ms - dense ms x \
         MoE MiB / dense MiB, unprofiled times)\n"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{BuildInfo, EngineSettings, ModelInfo};
    use crate::models::synthetic::Synthetic;
    use crate::record::{LoadReport, Provenance};

    /// A report of one model, without phases.
    fn report(model: ModelInfo) -> ProfileReport {
        ProfileReport {
            provenance: Provenance::now(),
            model: ModelProfile {
                model,
                upcycled: None,
                phases: Vec::new(),
                experts: None,
            },
            dense: None,
            dense_source: None,
            routing: None,
            engine: EngineSettings::default(),
            build: BuildInfo::default(),
            machine: Default::default(),
            load: LoadReport::default(),
            notes: Vec::new(),
        }
    }

    fn model(file_name: &str, synthetic: Option<Synthetic>) -> ModelInfo {
        ModelInfo {
            file_name: file_name.into(),
            architecture: "llama".into(),
            n_params: 6_700_000,
            synthetic,
            ..Default::default()
        }
    }

    #[test]
    fn a_synthetic_model_is_marked_as_bench_marks_it() {
        let s = Synthetic {
            of: "llama-2-7b".into(),
            model: "Llama-2-7B".into(),
            layers: 1,
            full_layers: 32,
            seed: 42,
            source: String::new(),
            tokenizer: "none (token ids only)".into(),
            experts: None,
            quant: Some("q4_0".into()),
            dense: false,
            values: 2,
        };
        let file = "llama-2-7b-q4_0-1l-s42-ids-v2-b.gguf";
        let text = render(&report(model(file, Some(s))));
        let first = text.lines().next().unwrap();
        assert_eq!(
            first,
            "model      llama-2-7b (synthetic) 1/32 layers (llama, 6.7M params, dense)"
        );
        let text = render(&report(model("real.gguf", None)));
        let first = text.lines().next().unwrap();
        assert_eq!(first, "model      real.gguf (llama, 6.7M params, dense)");
    }

    #[test]
    fn busy_figures_are_marked_in_the_table() {
        let mut r = report(model("real.gguf", None));
        r.load.during_other_cores_mean = 1.5;
        r.load.during_other_cores_max = 2.0;
        let load = |r: &ProfileReport| {
            let text = render(r);
            let line = text.lines().find(|l| l.starts_with("load ")).unwrap();
            line.to_string()
        };
        assert_eq!(
            load(&r),
            "load       other processes: 1.50 cores on average (peak 2.00)"
        );
        r.load.busy = true;
        assert_eq!(
            load(&r),
            "load       other processes: 1.50 cores on average (peak 2.00) (busy!): the figures \
             are suspect"
        );
    }

    #[test]
    fn the_breakdown_names_its_token_time_a_mean() {
        let mut r = report(model("real.gguf", None));
        r.model.phases.push(PhaseReport {
            phase: Phase::LongForm,
            tokens_per_call: 1,
            calls: 3,
            depth: 16,
            unprofiled_ms: 8.0,
            profiled_ms: 9.0,
            unprofiled_tps: 125.0,
            profiled_tps: 111.1,
            perturbation: 0.889,
            breakdown: Some(Breakdown {
                measured_ms_per_token: 10.0,
                node_ms_per_token: 9.0,
                coverage: 0.9,
                weight_bytes_per_token: 0.0,
                kv_bytes_per_token: 0.0,
                categories: vec![CategoryReport {
                    category: Category::Attention,
                    ms_per_token: 9.0,
                    share: 0.9,
                    weight_bytes_per_token: 0.0,
                    kv_bytes_per_token: 0.0,
                    nodes_per_token: 10.0,
                }],
            }),
            top_nodes: Vec::new(),
        });
        let text = render(&r);
        let row = |label: &str| -> String {
            let line = text.lines().find(|l| l.starts_with(label));
            line.unwrap_or_else(|| panic!("no {label} row: {text}"))
                .to_string()
        };
        let outside = row("outside graph nodes");
        assert!(outside.contains(" 1.000  10.0 %"), "{text}");
        let measured = row("measured (prof. mean)");
        assert!(measured.contains(" 10.000 100.0 %"), "{text}");
        assert!(!text.contains("measured (profiled)"), "{text}");
    }
}
