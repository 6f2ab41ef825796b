//! Drawing helpers over plotters' SVG backend: one chart frame (title, axes with units,
//! legend), a fixed palette, histogram bins, grouped bars on a category axis, and the chart
//! that says there is nothing to draw. Output depends on the data alone.

use plotters::chart::SeriesAnno;
use plotters::coord::cartesian::Cartesian2d;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

pub const WIDTH: u32 = 960;
pub const HEIGHT: u32 = 440;
pub const FONT: &str = "sans-serif";

/// Black text of `size` pixels in the charts' font.
pub fn text(size: u32) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).color(&BLACK)
}

/// Errors of drawing into an SVG string, as text.
pub type DrawResult<T> = Result<T, String>;

pub fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Tableau's ten categorical colours, in order.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The colour of the `i`-th series.
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Draws into a fresh SVG of the standard size and returns its text, control characters in
/// its labels (a name from a records file) written visibly.
pub fn svg(
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> DrawResult<()>,
) -> DrawResult<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    Ok(super::visible(&out))
}

/// A chart builder with the title and label areas every chart uses.
pub fn builder<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
    y_label_area: u32,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut b = ChartBuilder::on(root);
    b.caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(y_label_area);
    b
}

/// Draws the legend box at a corner.
pub fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> DrawResult<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 13))
        .draw()
        .map_err(err)
}

/// Points `(label, x, y)` as circles (or triangles) in one legend entry, each with its label
/// written beside it.
pub fn labelled_points<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    points: &[(String, f64, f64)],
    c: RGBColor,
    legend: &str,
    triangles: bool,
) -> DrawResult<()>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let marks = points.iter().map(|(_, x, y)| {
        if triangles {
            TriangleMarker::new((*x, *y), 7, c.filled()).into_dyn()
        } else {
            Circle::new((*x, *y), 6, c.filled()).into_dyn()
        }
    });
    chart
        .draw_series(marks)
        .map_err(err)?
        .label(legend)
        .legend(move |(x, y)| {
            if triangles {
                TriangleMarker::new((x + 6, y), 6, c.filled()).into_dyn()
            } else {
                Circle::new((x + 6, y), 5, c.filled()).into_dyn()
            }
        });
    let style = text(12);
    let labels = points.iter().map(|(n, x, y)| {
        // Beside the mark: a fixed share to the right works on linear and log axes alike.
        Text::new(n.clone(), (*x * 1.06, *y), style.clone())
    });
    chart.draw_series(labels).map_err(err)?;
    Ok(())
}

/// A line through `points`, dashed (one dash length for every chart) or solid; its legend entry
/// is the caller's.
pub fn line<'b, 'a, DB, X, Y, I>(
    chart: &'b mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    points: I,
    style: ShapeStyle,
    dashed: bool,
) -> DrawResult<&'b mut SeriesAnno<'a, DB>>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
    I: IntoIterator<Item = (f64, f64)>,
    I::IntoIter: Clone,
{
    match dashed {
        true => chart.draw_series(DashedLineSeries::new(points, 6, 4, style)),
        false => chart.draw_series(LineSeries::new(points, style)),
    }
    .map_err(err)
}

/// Draws the grid and both axes with their descriptions, ticks written by [`tick`].
pub fn axes<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    x_desc: &str,
    y_desc: &str,
) -> DrawResult<()>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .draw()
        .map_err(err)
}

/// A frame with axes, a note in the middle and a legend entry saying why it is empty.
pub fn empty(title: &str, x_desc: &str, y_desc: &str, note: &str) -> DrawResult<String> {
    svg(|root| {
        let mut chart = builder(root, title, 64)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(err)?;
        axes(&mut chart, x_desc, y_desc)?;
        let style = text(18);
        chart
            .draw_series(std::iter::once(Text::new(
                note.to_string(),
                (0.08, 0.55),
                style,
            )))
            .map_err(err)?
            .label(format!("no data: {note}"))
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], WHITE.filled()));
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

/// An axis tick without needless digits: `1500`, `2.5`, `0.25`, `0.0034`; from a billion up
/// and under 0.0001, in exponent form (`2.5e12`, `1e-7`).
pub fn tick(v: &f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e9).contains(&a) {
        let s = format!("{v:.2e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        return format!("{mantissa}e{exponent}");
    }
    let mut s = if a == 0.0 || a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        let digits = (-a.log10()).ceil() as usize + 1;
        format!("{v:.digits$}")
    };
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    s
}

/// Counts of `values` in `bins` equal bins over `[lo, hi]`; values above `hi` go to the last.
pub fn bin_counts(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<usize> {
    let mut counts = vec![0usize; bins.max(1)];
    let width = (hi - lo) / counts.len() as f64;
    for &v in values.iter().filter(|v| v.is_finite()) {
        let i = if width > 0.0 {
            ((v - lo) / width).floor().max(0.0) as usize
        } else {
            0
        };
        let last = counts.len() - 1;
        counts[i.min(last)] += 1;
    }
    counts
}

/// A category axis: category `i` sits at position `i` (a bar spans `i ± 0.4`); the axis
/// labels each whole position with its category's name.
#[derive(Debug, Clone)]
pub struct Categories {
    pub names: Vec<String>,
}

impl Categories {
    /// The name at position `x`, when `x` is a category's own position.
    pub fn label(&self, x: f64) -> String {
        let i = x.round();
        if i < 0.0 || (x - i).abs() > 1e-6 {
            return String::new();
        }
        self.names.get(i as usize).cloned().unwrap_or_default()
    }
}

impl Ranged for Categories {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let r = self.range();
        let share = (value - r.start) / (r.end - r.start);
        limit.0 + (share * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            return Vec::new();
        }
        (0..self.names.len()).map(|i| i as f64).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        -0.5..(self.names.len() as f64 - 0.5).max(0.5)
    }
}

impl ValueFormatter<f64> for Categories {
    fn format_ext(&self, value: &f64) -> String {
        self.label(*value)
    }
}

/// The slot `k` of `n` bars grouped on category `c`, as a (start, end) on the axis.
pub fn bar_slot(c: usize, k: usize, n: usize) -> (f64, f64) {
    let width = 0.8 / n.max(1) as f64;
    let start = c as f64 - 0.4 + k as f64 * width;
    (start, start + width * 0.92)
}

/// The largest magnitude a chart draws. Axis bounds are small multiples of the values they hold,
/// and a log axis spans the ratio of its largest to its least; plotters' search for tick marks
/// ends only on axes whose bounds and that ratio are finite. Values within `1/LIMIT..=LIMIT`
/// (or zero) keep both well inside what an `f64` holds; figures beyond (a record's decode rate
/// of 1e308 or 1e-320 tokens/s) are left out of the charts, and the tables still show them.
pub const LIMIT: f64 = 1e100;

/// Whether a chart draws `v`: zero, or finite with a magnitude within `1/LIMIT..=LIMIT`.
pub fn chartable(v: f64) -> bool {
    v == 0.0 || (1.0 / LIMIT..=LIMIT).contains(&v.abs())
}

/// Whether a chart draws a labelled point `(label, x, y)`: both its coordinates
/// [`chartable`].
pub fn chartable_point(p: &(String, f64, f64)) -> bool {
    chartable(p.1) && chartable(p.2)
}

/// An upper bound a little above the largest value (at least `floor`).
pub fn headroom(max: f64, floor: f64) -> f64 {
    if max.is_finite() && max > 0.0 {
        (max * 1.15).max(floor)
    } else {
        floor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_drop_needless_digits() {
        assert_eq!(tick(&1500.0), "1500");
        assert_eq!(tick(&2.5), "2.5");
        assert_eq!(tick(&10.0), "10");
        assert_eq!(tick(&0.25), "0.25");
        assert_eq!(tick(&0.0034), "0.0034");
        assert_eq!(tick(&0.0), "0");
        assert_eq!(tick(&2.5e12), "2.5e12");
        assert_eq!(tick(&-1e100), "-1e100");
        assert_eq!(tick(&1e-7), "1e-7");
        assert_eq!(tick(&1.234e-90), "1.23e-90");
        assert_eq!(tick(&999_999_999.0), "999999999");
    }

    #[test]
    fn bins_count_every_value_once() {
        let c = bin_counts(&[0.0, 0.9, 1.0, 5.0, 100.0, f64::NAN], 0.0, 10.0, 10);
        assert_eq!(c.iter().sum::<usize>(), 5);
        assert_eq!(c[0], 2);
        assert_eq!(c[1], 1);
        assert_eq!(c[9], 1, "values past the end go to the last bin");
        assert_eq!(bin_counts(&[3.0, 3.0], 3.0, 3.0, 4), vec![2, 0, 0, 0]);
    }

    #[test]
    fn chartable_values_keep_axis_bounds_finite() {
        for v in [0.0, 1e-100, -2.5, 116.0, 1e100] {
            assert!(chartable(v), "{v}");
        }
        for v in [
            1e308,
            1e-320,
            1e101,
            -1e101,
            f64::INFINITY,
            f64::NAN,
            f64::MAX,
        ] {
            assert!(!chartable(v), "{v}");
        }
        // The widest log axis charts draw: a third of the least to three times the most.
        assert!(((LIMIT * 3.0) / (1.0 / LIMIT / 3.0)).is_finite());
    }

    #[test]
    fn categories_label_whole_positions_only() {
        let c = Categories {
            names: vec!["q4_0".to_string(), "q8_0".to_string()],
        };
        assert_eq!(c.label(1.0), "q8_0");
        assert_eq!(c.label(0.5), "");
        assert_eq!(c.label(7.0), "");
        assert_eq!(c.range(), -0.5..1.5);
        assert_eq!(c.map(&-0.5, (0, 100)), 0);
        assert_eq!(c.map(&1.5, (0, 100)), 100);
        let (a, b) = bar_slot(1, 1, 2);
        assert!(a > 1.0 - 0.4 && b < 1.4 && a < b);
    }

    #[test]
    fn an_empty_chart_has_its_title_axes_and_note() {
        let s = empty("Routing", "share (%)", "series", "no MoE records").unwrap();
        assert!(s.starts_with("<svg"));
        for text in ["Routing", "share (%)", "series", "no MoE records"] {
            assert!(s.contains(text), "{text} missing");
        }
        assert_eq!(
            s,
            empty("Routing", "share (%)", "series", "no MoE records").unwrap()
        );
    }
}
