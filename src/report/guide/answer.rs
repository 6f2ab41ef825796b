//! "What should I run on this machine?" (`runner guide --machine`): the catalogue on a chip,
//! recommendations first, then what was measured on the same chip and what others published.

use super::catalog::{self, CatalogueRow};
use super::local::Local;
use super::render::{markdown_or, pct, rate, trust, PUBLISHED, ROWS};
use super::rows::GuideRow;
use super::{machine::MachineSpec, Guide};
use crate::measure::stats::percentile;
use crate::report::reference::Published;
use crate::report::table::{self, opt, Column};

/// A machine's catalogue columns.
const MACHINE_ROWS: &[Column<CatalogueRow>] = &[
    Column::text("model", |r| r.model.clone()),
    Column::text("quant", |r| r.quant.clone()),
    Column::number("params B", |r| {
        if r.moe {
            format!("{:.1} ({:.1} active)", r.params_b, r.active_params_b)
        } else {
            format!("{:.1}", r.params_b)
        }
    }),
    Column::number("memory GiB", |r| format!("{:.1}", r.memory_needed_gib)),
    Column::number("headroom GiB", |r| match r.usable_gib {
        Some(u) => format!("{:.1}", u - r.memory_needed_gib),
        None => "-".into(),
    }),
    Column::text("fits", |r| r.fits.to_string()),
    Column::number("decode tok/s", |r| rate(r.decode_tps)),
    Column::number("prompt tok/s", |r| rate(r.prompt_tps)),
    Column::number("TTFT ms", |r| opt(r.ttft_ms, 0)),
    Column::text("confidence", |r| r.confidence.label().to_string()),
    Column::text("basis", |r| r.basis.clone()),
];

/// Where `--machine`'s rates come from when runner has records of the same chip.
fn recorded_basis(l: &Local) -> String {
    let Some(f) = l.fit else {
        return String::new();
    };
    let errors: Vec<f64> = l
        .validate()
        .iter()
        .filter_map(|v| v.error.map(f64::abs))
        .collect();
    let worst = errors.iter().copied().reduce(f64::max);
    format!(
        "\n\nRates on this chip come from the {} decodes runner measured on {} (measured models at \
         their measured rate, the others from a fit to those decodes: {:.1} % of the {:.0} GB/s \
         {}, {:.1} ms fixed per token), not from the published rows; each of those decodes \
         predicted from the others: median error {} (worst {}).",
        f.dense_rows + f.moe_rows,
        table::markdown_cell(&l.label),
        f.efficiency * 100.0,
        l.gbps,
        l.gbps_from,
        f.fixed_ms,
        pct(percentile(&errors, 0.5)),
        pct(worst)
    )
}

fn pick(what: &str, r: Option<&CatalogueRow>, none: &str) -> String {
    match r {
        Some(r) => format!(
            "- {what}: **{} {}**, about {} tok/s decode ({}), {:.1} GiB of {:.1} usable ({:.1} GiB to \
             spare{}).\n",
            r.model,
            r.quant,
            rate(r.decode_tps),
            r.confidence.label(),
            r.memory_needed_gib,
            r.usable_gib.unwrap_or(0.0),
            r.usable_gib.unwrap_or(0.0) - r.memory_needed_gib,
            match r.fits {
                catalog::Fit::Tight => ": tight, less than the 10 % the guide keeps free",
                _ => "",
            }
        ),
        None => format!("- {what}: {none}\n"),
    }
}

/// "What should I run on this machine?": the catalogue on it, recommendations first, then
/// what was measured on the same chip and what others published for it.
pub fn answer(g: &Guide, spec: &MachineSpec, interactive: f64) -> String {
    let chip = spec.chip;
    let mut s = format!("# What to run on: {}\n\n", spec.label());
    s.push_str(&format!(
        "`{}` is the {} in runner's chip table: {} GB/s published ({}; {}).\n\n",
        spec.given, chip.name, chip.peak_gbps, chip.memory, chip.source
    ));
    if let Some(cal) = &g.calibration {
        let usable = catalog::usable(chip, spec.memory_bytes);
        if let Some(share) = usable.apple_share {
            s.push_str(&format!(
                "Memory: macOS lets the GPU use about {:.0} % of unified memory by default, \
                 {:.1} GiB here (raise it with `sudo sysctl iogpu.wired_limit_mb=...`). Needs \
                 below are at a {}-token context.\n\n",
                share * 100.0,
                usable.bytes as f64 / crate::report::GIB,
                cal.assumptions.context
            ));
        }
        s.push_str(&trust(cal));
        if let Some(l) = cal.recorded(chip) {
            s.push_str(&recorded_basis(l));
        }
        s.push_str("\n\n## Recommendations\n\n");
        let mut rows = cal.for_machine(spec);
        rows.sort_by(|a, b| {
            (!a.fits.fits())
                .cmp(&!b.fits.fits())
                .then_with(|| {
                    b.decode_tps
                        .unwrap_or(0.0)
                        .total_cmp(&a.decode_tps.unwrap_or(0.0))
                })
                .then_with(|| (&a.entry, &a.quant).cmp(&(&b.entry, &b.quant)))
        });
        let (fastest, largest) = catalog::recommend(&rows, interactive);
        if rows.iter().all(|r| r.decode_tps.is_none()) {
            let backend = rows.first().map_or("", |r| r.backend.as_str());
            s.push_str(&format!(
                "- No rates: runner has no published {backend} rows to fit a prediction to, so \
                 only memory and fit are shown. Measure a machine like it (`runner bench`, \
                 `scripts/guide-records.sh`) and its records give it rates.\n"
            ));
        } else {
            s.push_str(&pick(
                "Fastest that fits",
                fastest,
                "nothing in the catalogue fits.",
            ));
            s.push_str(&pick(
                &format!("Largest that fits and decodes at {interactive} tok/s or more"),
                largest,
                &format!("nothing that fits decodes at {interactive} tok/s (see the table)."),
            ));
        }
        let (fit, unfit): (Vec<&CatalogueRow>, Vec<&CatalogueRow>) =
            rows.iter().partition(|r| r.fits.fits());
        s.push_str("\n## Every catalogue model that fits\n\n");
        s.push_str(&markdown_or(MACHINE_ROWS, fit.iter().copied(), "None.\n"));
        if !unfit.is_empty() {
            let names: Vec<String> = unfit
                .iter()
                .map(|r| format!("{} {} ({:.1} GiB)", r.model, r.quant, r.memory_needed_gib))
                .collect();
            s.push_str(&format!("\nDoes not fit: {}.\n", names.join(", ")));
        }
    }
    let measured: Vec<&GuideRow> = g
        .measured()
        .filter(|r| r.chip.as_deref() == Some(chip.name))
        .collect();
    if !measured.is_empty() {
        s.push_str("\n## Measured on the same chip\n\n");
        s.push_str(&table::markdown(ROWS, measured.iter().copied()));
    }
    let same_chip = |p: &&Published| {
        crate::hw::chips::recognise(&p.machine, None).map(|c| c.name) == Some(chip.name)
    };
    let published: Vec<&Published> = g.published.iter().filter(same_chip).collect();
    if !published.is_empty() {
        s.push_str("\n## Published figures for this chip\n\n");
        s.push_str(&table::markdown(PUBLISHED, published.iter().copied()));
    }
    s
}
