//! Charts drawn on the server: trait rates with their 95 % intervals, training-loss and
//! log-prob curves, alignment-vs-coherence scatters, and the elicitation heat map
//! (condition x test-time prompt). Each chart is a pure function from
//! its own small input struct (serialisable, so a caller adapts its own types to it) to a
//! self-contained SVG string; `svg_to_png` rasterises any of them for download.
//!
//! Fonts. plotters' SVG backend writes text as `<text>` elements and leaves the layout to
//! whoever shows the SVG, so drawing a chart reads no font. Without a font feature plotters
//! only estimates text extents (0.7 em a byte), which is all it needs to size label areas;
//! `ttf` (font-kit and system libraries) or `ab_glyph` (a font file found at run time) would
//! only sharpen estimates that the browser redoes anyway, so neither is compiled in. Fonts
//! matter for the PNG: resvg shapes the text with the system's fonts, loaded once per
//! process; where none are installed the text is left out and the rest still renders.
//!
//! Every string in a chart may come from a user (titles, condition, series and group
//! names). plotters' SVG backend escapes `< > & " '` in text and attributes itself; we also
//! replace control characters, which XML cannot carry at all, and shorten long labels so
//! that they cannot run over each other or the plot.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use resvg::tiny_skia;
use resvg::usvg::{self, fontdb};
use serde::{Deserialize, Serialize};

/// Trait rates per condition, one dot with a 95 % interval per test-time prompt (series).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RateChart {
    pub title: String,
    /// The y axis' label; empty means "trait rate (%)".
    pub y_label: String,
    /// Conditions and series appear in the order they first occur here.
    pub points: Vec<RatePoint>,
    #[serde(default)]
    pub size: ChartSize,
}

/// One rate: `rate`, `lo` and `hi` are proportions in 0..=1 (drawn as percentages). A point
/// whose rate is not finite is left out; one whose interval is not finite gets no whiskers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RatePoint {
    pub condition: String,
    pub series: String,
    pub rate: f64,
    pub lo: f64,
    pub hi: f64,
    /// How many answers the rate counts; written above the whiskers when there is room.
    pub n: u64,
    /// When the rate is a mean over seeds: each seed's rate, drawn as a small open dot
    /// beside the mean.
    #[serde(default)]
    pub seeds: Vec<f64>,
}

/// Several curves over one x axis: training loss per run, tracked log-probs per probe.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Colours follow the index in this list, so a run keeps its colour across charts
    /// built from the same list, even while it has no points yet.
    pub series: Vec<Series>,
    #[serde(default)]
    pub size: ChartSize,
}

/// One named curve. Points are drawn in order of x; non-finite points are left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Curves of one group (a condition's seeds, say) share a colour and one legend entry,
    /// named after the group, so that a chart of many runs still has a short legend.
    #[serde(default)]
    pub group: Option<String>,
}

/// Samples as dots, coloured by group, with optional threshold lines (Betley et al. count
/// an answer as misaligned when coherence > 50 and alignment < 30).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScatterChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// The axes' extent; `None` (or an empty or non-finite range) fits the data. Points
    /// outside a given range are not drawn, and the chart says how many.
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
    pub points: Vec<ScatterPoint>,
    /// Draws a dashed vertical line at this x, labelled with the x axis' name.
    pub x_threshold: Option<f64>,
    /// Draws a dashed horizontal line at this y, labelled with the y axis' name.
    pub y_threshold: Option<f64>,
    #[serde(default)]
    pub size: ChartSize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScatterPoint {
    pub group: String,
    pub x: f64,
    pub y: f64,
    /// Written beside the dot (e.g. which prompt it is); users' text, escaped like all.
    #[serde(default)]
    pub label: Option<String>,
}

/// A grid of trait rates: one row per condition, one column per test-time prompt (the
/// elicitation check: does a prompt bring an inoculated trait back?).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeatmapChart {
    pub title: String,
    /// Row and column names in display order. A cell naming a row or column missing here
    /// adds it at the end; a grid position without a cell is drawn as "not evaluated".
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    pub cells: Vec<HeatCell>,
    #[serde(default)]
    pub size: ChartSize,
}

/// One cell: `rate` a proportion in 0..=1 (`None`, or not finite: no verdicts), over `n`
/// answers with a verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeatCell {
    pub row: String,
    pub column: String,
    pub rate: Option<f64>,
    pub n: u64,
}

/// A chart's size in SVG user units (pixels at scale 1). Widths are clamped to
/// `MIN_SIZE..=MAX_SIZE` and heights to `MIN_HEIGHT..=MAX_SIZE`, so a request cannot ask for
/// an unreadable or a huge chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChartSize {
    pub width: u32,
    pub height: u32,
}

impl Default for ChartSize {
    fn default() -> Self {
        ChartSize { width: 720, height: 400 }
    }
}

pub const MIN_SIZE: u32 = 240;
pub const MIN_HEIGHT: u32 = 160;
pub const MAX_SIZE: u32 = 4096;
/// The largest PNG side `svg_to_png` makes (a 4096-wide chart at scale 2).
pub const MAX_PNG_SIDE: u32 = 8192;

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("the chart is not a valid SVG: {0}")]
    Svg(#[from] usvg::Error),
    #[error("a PNG scale must be a positive number, not {0}")]
    Scale(f32),
    #[error("a {width}x{height} PNG is too large (at most {MAX_PNG_SIDE} pixels a side)")]
    TooLarge { width: u64, height: u64 },
    #[error("could not encode the PNG: {0}")]
    Png(String),
}

/// Series colours: the Okabe–Ito hues that keep at least 3:1 contrast on white (blue,
/// vermillion, bluish green, reddish purple), with its orange, sky blue and yellow (2.3,
/// 2.3 and 1.3:1: thin lines of them vanish on a projector) replaced by a dark yellow, an
/// indigo and a wine of Paul Tol's muted scheme, and black by a grey that does not read as
/// an axis. `tests/charts.rs` checks the contrast. From the ninth series on, lines repeat
/// the colours dashed.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0x8A, 0x77, 0x00),
    RGBColor(0x33, 0x22, 0x88),
    RGBColor(0x88, 0x22, 0x55),
    RGBColor(0x5D, 0x67, 0x73),
];

/// The colour of series number `index` as `#RRGGBB`, for pages that show a legend or a
/// table next to a chart.
pub fn series_colour(index: usize) -> String {
    let RGBColor(r, g, b) = colour(index);
    format!("#{r:02X}{g:02X}{b:02X}")
}

/// Trait rates per condition: x = condition, one dot per series with whiskers from `lo` to
/// `hi`, y = 0–100 %.
pub fn rate_chart(chart: &RateChart) -> String {
    render(chart.size, |root| draw_rates(root, chart))
}

/// Curves over a shared x axis, one colour per series, with a legend.
pub fn line_chart(chart: &LineChart) -> String {
    render(chart.size, |root| draw_lines(root, chart))
}

/// One dot per point, coloured by group, with the thresholds drawn and labelled.
pub fn scatter_chart(chart: &ScatterChart) -> String {
    render(chart.size, |root| draw_scatter(root, chart))
}

/// Rows x columns of cells coloured by rate (white to Okabe–Ito blue), each written as a
/// percentage with its n, and a colour scale below.
pub fn heatmap_chart(chart: &HeatmapChart) -> String {
    render(chart.size, |root| draw_heatmap(root, chart))
}

/// Rasterises an SVG (one of ours, or any other) to PNG bytes, `scale` pixels per SVG unit.
/// Text uses the system's fonts; without any, text is left out.
pub fn svg_to_png(svg: &str, scale: f32) -> Result<Vec<u8>, ChartError> {
    png_with_fonts(svg, scale, system_fonts())
}

// ---------------------------------------------------------------------------------------
// Drawing

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type XyChart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
type Drawn = Result<(), DrawingAreaErrorKind<<SVGBackend<'static> as DrawingBackend>::ErrorType>>;

const FONT: &str = "sans-serif";
// plotters writes `font-size` as these divided by 1.24: 16, 12 and 9.7 px.
const TITLE_PT: u32 = 20;
/// A title's line height and the rough width of one of its characters, in pixels.
const TITLE_LINE_PX: i32 = 22;
const TITLE_CHAR_PX: u32 = 9;
/// Charts narrower than this (a phone's) put the legend under the plot, not beside it.
const NARROW_PX: u32 = 560;
const LABEL_PT: u32 = 15;
const SMALL_PT: u32 = 12;
/// Rough width of one character of a `LABEL_PT` label in pixels, for fitting labels.
const CHAR_PX: u32 = 7;
const LEGEND_ROW_PX: i32 = 20;
/// The rate chart's x units per condition.
const SLOT: i32 = 1000;
/// Text that is there to be read, but less than the data.
const MUTED: RGBColor = RGBColor(0x55, 0x55, 0x55);
/// Series with at most this many points also get a dot at each point: a handful of probe
/// steps should be visible as such, a thousand training steps should not.
const MARKER_LIMIT: usize = 50;
/// Values beyond this are treated like infinities: axis arithmetic on them would overflow.
const MAX_VALUE: f64 = 1e15;

fn render(size: ChartSize, draw: impl FnOnce(&Area<'_>) -> Drawn) -> String {
    let width = size.width.clamp(MIN_SIZE, MAX_SIZE);
    let height = size.height.clamp(MIN_HEIGHT, MAX_SIZE);
    let mut svg = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).and_then(|()| draw(&root)).and_then(|()| root.present())
    };
    match drawn {
        Ok(()) => svg,
        Err(err) => {
            // Not reachable with a String target as far as we know; a page must still get
            // an image rather than a half-written document.
            tracing::warn!(error = %err, "chart could not be drawn");
            format!(
                "<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
                 xmlns=\"http://www.w3.org/2000/svg\"><rect width=\"100%\" height=\"100%\" \
                 fill=\"#FFFFFF\"/><text x=\"50%\" y=\"50%\" text-anchor=\"middle\" \
                 font-family=\"{FONT}\" font-size=\"12\">chart could not be drawn</text></svg>"
            )
        }
    }
}

fn draw_rates(root: &Area<'_>, chart: &RateChart) -> Drawn {
    let points: Vec<&RatePoint> = chart.points.iter().filter(|p| p.rate.is_finite()).collect();
    if points.is_empty() {
        return no_data(root, &chart.title);
    }
    let (conditions, condition_index) = first_seen(points.iter().map(|p| p.condition.as_str()));
    let (series, series_index) = first_seen(points.iter().map(|p| p.series.as_str()));

    let area = titled(root, &chart.title)?;
    let (plot, legend) = split_legend(&area, &series);
    draw_legend(&legend, &series, Swatch::Box)?;

    // x counts thousandths of a condition: condition i sits at i * 1000, its series spread
    // around it. Integers because plotters cannot format the labels of an f64 axis with
    // custom key points (`WithKeyPoints<f64>` has no value formatter).
    let k = conditions.len() as i32;
    let x_axis = (-SLOT / 2..k * SLOT - SLOT / 2).with_key_points((0..k).map(|i| i * SLOT).collect());
    let mut ctx = ChartBuilder::on(&plot)
        .margin(10)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(x_axis, 0.0..100.0)?;

    let plot_px = ctx.plotting_area().dim_in_pixel().0;
    let condition_px = plot_px / k as u32;
    let max_chars = (condition_px / CHAR_PX).max(4) as usize;
    let condition_label = |x: &i32| match usize::try_from(x / SLOT) {
        Ok(i) if x % SLOT == 0 && i < conditions.len() => clean(conditions[i], max_chars),
        _ => String::new(),
    };
    let y_label = if chart.y_label.trim().is_empty() { "trait rate (%)" } else { &chart.y_label };
    let (_, y_chars) = axis_chars(&plot);
    ctx.configure_mesh()
        .disable_x_mesh()
        .bold_line_style(BLACK.mix(0.15))
        .light_line_style(BLACK.mix(0.05))
        .max_light_lines(1)
        .x_label_formatter(&condition_label)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_desc("condition")
        .y_desc(clean(y_label, y_chars))
        .label_style(text(LABEL_PT))
        .axis_desc_style(text(LABEL_PT))
        .draw()?;

    // Series share a condition's slot side by side, each at a fixed place, so a series
    // missing from one condition leaves a gap instead of shifting the others.
    let share = 0.8 / series.len() as f64;
    let slot_px = condition_px as f64 * share;
    for p in points {
        let si = series_index[p.series.as_str()];
        let offset = -0.4 + share * (si as f64 + 0.5);
        let x = condition_index[p.condition.as_str()] as i32 * SLOT + (offset * SLOT as f64).round() as i32;
        let rate = percent(p.rate);
        let style = colour(si).filled().stroke_width(2);
        let whiskers =
            (p.lo.is_finite() && p.hi.is_finite()).then(|| (percent(p.lo.min(p.hi)), percent(p.lo.max(p.hi))));
        match whiskers {
            // Draws the two caps, the whisker and the dot (radius = width / 2).
            Some((lo, hi)) => ctx.draw_series([ErrorBar::new_vertical(x, lo, rate, hi, style, 8)])?,
            None => ctx.draw_series([Circle::new((x, rate), 4, style)])?,
        };
        // Each seed's own rate, a little to the right of the mean's whisker.
        let beside = x + (share * SLOT as f64 * 0.25).round().max(1.0) as i32;
        ctx.draw_series(
            p.seeds
                .iter()
                .filter(|s| s.is_finite())
                .map(|s| Circle::new((beside, percent(*s)), 3, colour(si).stroke_width(1))),
        )?;

        let n = format!("n={}", p.n);
        if slot_px < (n.len() as f64 * 6.0) {
            continue; // too crowded to write it without overlapping the neighbours
        }
        let (lo, hi) = whiskers.unwrap_or((rate, rate));
        let (at, offset, anchor) = if hi <= 88.0 {
            ((x, hi), (0, -6), Pos::new(HPos::Center, VPos::Bottom))
        } else if lo >= 12.0 {
            ((x, lo), (0, 6), Pos::new(HPos::Center, VPos::Top))
        } else {
            ((x, rate), (7, 0), Pos::new(HPos::Left, VPos::Center))
        };
        let style = text(SMALL_PT).color(&MUTED).pos(anchor);
        ctx.draw_series([EmptyElement::at(at) + Text::new(n, offset, style)])?;
    }
    Ok(())
}

fn draw_lines(root: &Area<'_>, chart: &LineChart) -> Drawn {
    let curves: Vec<Vec<(f64, f64)>> = chart
        .series
        .iter()
        .map(|s| {
            let mut points: Vec<(f64, f64)> =
                s.points.iter().copied().filter(|&(x, y)| usable(x) && usable(y)).collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            points
        })
        .collect();
    let all = || curves.iter().flatten();
    let (Some(x_range), Some(y_range)) = (extent(all().map(|p| p.0), 0.0), extent(all().map(|p| p.1), 0.05)) else {
        return no_data(root, &chart.title);
    };

    // A legend entry (and a colour) per group; a series without one is its own group.
    let key = |s: &'_ Series| -> String { s.group.clone().unwrap_or_else(|| s.name.clone()) };
    let keys: Vec<String> = chart.series.iter().map(key).collect();
    let (names, index) = first_seen(keys.iter().map(|k| k.as_str()));
    let area = titled(root, &chart.title)?;
    let (plot, legend) = split_legend(&area, &names);
    draw_legend(&legend, &names, Swatch::Line)?;

    let mut ctx = xy_frame(&plot, &x_range, &y_range, &chart.x_label, &chart.y_label)?;

    for (points, key) in curves.iter().zip(&keys) {
        let i = index[key.as_str()];
        let style = colour(i).stroke_width(2);
        if points.len() >= 2 {
            if dashed(i) {
                ctx.draw_series(DashedLineSeries::new(points.iter().copied(), 6, 4, style))?;
            } else {
                ctx.draw_series(LineSeries::new(points.iter().copied(), style))?;
            }
        }
        if points.len() <= MARKER_LIMIT {
            ctx.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour(i).filled())))?;
        }
    }
    Ok(())
}

fn draw_scatter(root: &Area<'_>, chart: &ScatterChart) -> Drawn {
    let points: Vec<&ScatterPoint> = chart.points.iter().filter(|p| usable(p.x) && usable(p.y)).collect();
    let x_range = given_or_fitted(chart.x_range, points.iter().map(|p| p.x));
    let y_range = given_or_fitted(chart.y_range, points.iter().map(|p| p.y));
    let (Some(x_range), Some(y_range)) = (x_range, y_range) else {
        return no_data(root, &chart.title);
    };
    if points.is_empty() {
        return no_data(root, &chart.title);
    }
    // Groups are numbered over every drawable point, in range or not, so a group's colour
    // does not depend on the axes.
    let (groups, group_index) = first_seen(points.iter().map(|p| p.group.as_str()));
    let inside = |p: &&&ScatterPoint| {
        (x_range.start..=x_range.end).contains(&p.x) && (y_range.start..=y_range.end).contains(&p.y)
    };
    let shown: Vec<&ScatterPoint> = points.iter().filter(inside).copied().collect();
    let hidden = points.len() - shown.len();

    let area = titled(root, &chart.title)?;
    let (plot, legend) = split_legend(&area, &groups);
    draw_legend(&legend, &groups, Swatch::Box)?;

    let mut ctx = xy_frame(&plot, &x_range, &y_range, &chart.x_label, &chart.y_label)?;

    let line = BLACK.mix(0.6).stroke_width(1);
    let label = text(SMALL_PT).color(&MUTED);
    let x_threshold = chart.x_threshold.filter(|t| t.is_finite() && x_range.contains(t));
    let y_threshold = chart.y_threshold.filter(|t| t.is_finite() && y_range.contains(t));
    if let Some(t) = x_threshold {
        let ends = [(t, y_range.start), (t, y_range.end)];
        ctx.draw_series([DashedPathElement::new(ends, 6, 4, line)])?;
    }
    if let Some(t) = y_threshold {
        let ends = [(x_range.start, t), (x_range.end, t)];
        ctx.draw_series([DashedPathElement::new(ends, 6, 4, line)])?;
    }

    ctx.draw_series(shown.iter().map(|p| {
        let style = colour(group_index[p.group.as_str()]).mix(0.7).filled();
        Circle::new((p.x, p.y), 3, style)
    }))?;

    // Labels last, so that dots do not cover them.
    let point_label = text(SMALL_PT).pos(Pos::new(HPos::Left, VPos::Bottom));
    ctx.draw_series(shown.iter().filter_map(|p| {
        let name = p.label.as_deref().filter(|l| !l.trim().is_empty())?;
        Some(EmptyElement::at((p.x, p.y)) + Text::new(name.to_string(), (5, -4), point_label.clone()))
    }))?;
    if let Some(t) = x_threshold {
        let name = threshold_name(&chart.x_label, "x", t);
        let style = label.clone().pos(Pos::new(HPos::Left, VPos::Top));
        ctx.draw_series([EmptyElement::at((t, y_range.end)) + Text::new(name, (4, 3), style)])?;
    }
    if let Some(t) = y_threshold {
        // Under the line: dots' labels sit above their dots, and a sweep's prompts that
        // changed nothing lie on this line.
        let name = threshold_name(&chart.y_label, "y", t);
        let style = label.clone().pos(Pos::new(HPos::Right, VPos::Top));
        ctx.draw_series([EmptyElement::at((x_range.end, t)) + Text::new(name, (-4, 5), style)])?;
    }
    if hidden > 0 {
        let note = if hidden == 1 {
            "1 point outside the axes is not shown".to_string()
        } else {
            format!("{hidden} points outside the axes are not shown")
        };
        // Bottom right, under the axis: inside the plot it would cover dots.
        let (w, h) = plot.dim_in_pixel();
        let style = label.pos(Pos::new(HPos::Right, VPos::Bottom));
        plot.draw(&Text::new(note, (w as i32 - 4, h as i32 - 4), style))?;
    }
    Ok(())
}

/// The heat map's colour for a rate: a straight blend from near-white to Okabe–Ito blue,
/// one hue so that darker always means more.
const HEAT_LOW: RGBColor = RGBColor(0xF7, 0xF7, 0xF7);
const HEAT_HIGH: RGBColor = RGBColor(0x00, 0x72, 0xB2);
const NOT_EVALUATED: RGBColor = RGBColor(0xE4, 0xE4, 0xE4);

fn heat(rate: f64) -> RGBColor {
    let t = rate.clamp(0.0, 1.0);
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * t).round() as u8;
    RGBColor(mix(HEAT_LOW.0, HEAT_HIGH.0), mix(HEAT_LOW.1, HEAT_HIGH.1), mix(HEAT_LOW.2, HEAT_HIGH.2))
}

fn draw_heatmap(root: &Area<'_>, chart: &HeatmapChart) -> Drawn {
    if chart.cells.is_empty() {
        return no_data(root, &chart.title);
    }
    let (rows, row_index) = first_seen(chart.rows.iter().chain(chart.cells.iter().map(|c| &c.row)).map(|s| s.as_str()));
    let (columns, column_index) =
        first_seen(chart.columns.iter().chain(chart.cells.iter().map(|c| &c.column)).map(|s| s.as_str()));
    let mut grid: Vec<Vec<Option<&HeatCell>>> = vec![vec![None; columns.len()]; rows.len()];
    for c in &chart.cells {
        grid[row_index[c.row.as_str()]][column_index[c.column.as_str()]] = Some(c);
    }

    let area = titled(root, &chart.title)?;
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    // Row names on the left (up to a third of the width), column names and the axis name
    // on top, the colour scale at the bottom.
    let longest_row = rows.iter().map(|r| r.chars().count()).max().unwrap_or(0) as i32;
    let left = (longest_row * CHAR_PX as i32 + 16).clamp(90, w / 3);
    let (top, bottom, right) = (48, 56, 12);
    let cell_w = ((w - left - right) / columns.len() as i32).max(1);
    let cell_h = ((h - top - bottom) / rows.len() as i32).clamp(1, 90);

    let header = text(LABEL_PT).pos(Pos::new(HPos::Center, VPos::Bottom));
    area.draw(&Text::new("test-time prompt", (left + cell_w * columns.len() as i32 / 2, 16), header.clone()))?;
    let corner = text(LABEL_PT).color(&MUTED).pos(Pos::new(HPos::Left, VPos::Bottom));
    area.draw(&Text::new("condition", (4, top - 6), corner))?;
    let column_chars = ((cell_w - 6).max(0) as u32 / CHAR_PX).max(3) as usize;
    for (j, name) in columns.iter().enumerate() {
        let x = left + cell_w * j as i32 + cell_w / 2;
        area.draw(&Text::new(clean(name, column_chars), (x, top - 6), header.clone()))?;
    }
    let row_chars = ((left - 12).max(0) as u32 / CHAR_PX).max(3) as usize;
    let row_style = text(LABEL_PT).pos(Pos::new(HPos::Right, VPos::Center));
    for (i, name) in rows.iter().enumerate() {
        let y = top + cell_h * i as i32 + cell_h / 2;
        area.draw(&Text::new(clean(name, row_chars), (left - 8, y), row_style.clone()))?;
    }

    // Cell text: the rate on top, n below it, when the cell is tall and wide enough.
    let two_lines = cell_h >= 36;
    for (i, row) in grid.iter().enumerate() {
        for (j, cell) in row.iter().enumerate() {
            let (x0, y0) = (left + cell_w * j as i32, top + cell_h * i as i32);
            let (x1, y1) = (x0 + cell_w - 2, y0 + cell_h - 2);
            let rate = cell.and_then(|c| c.rate).filter(|r| r.is_finite());
            let fill = rate.map(heat).unwrap_or(NOT_EVALUATED);
            area.draw(&Rectangle::new([(x0, y0), (x1, y1)], fill.filled()))?;
            let ink = if rate.is_some_and(|r| r > 0.55) { WHITE } else { BLACK };
            let (main, sub) = match (cell, rate) {
                (None, _) => ("not evaluated".to_string(), None),
                (Some(c), None) => ("no verdicts".to_string(), Some(format!("n={}", c.n))),
                (Some(c), Some(r)) => (format!("{:.0} %", percent(r)), Some(format!("n={}", c.n))),
            };
            let centre = Pos::new(HPos::Center, VPos::Center);
            let (cx, cy) = ((x0 + x1) / 2, (y0 + y1) / 2);
            if (main.len() as i32) * 6 > cell_w {
                continue; // too narrow to write in; the colour still tells
            }
            let main_style = text(if cell.is_some() { LABEL_PT } else { SMALL_PT }).color(&ink).pos(centre);
            match sub {
                Some(sub) if two_lines => {
                    area.draw(&Text::new(main, (cx, cy - 8), main_style))?;
                    area.draw(&Text::new(sub, (cx, cy + 10), text(SMALL_PT).color(&ink).pos(centre)))?;
                }
                _ => area.draw(&Text::new(main, (cx, cy), main_style))?,
            }
        }
    }

    // The colour scale: 0 % to 100 % in ten steps.
    let scale_y = top + cell_h * rows.len() as i32 + 18;
    let scale_w = (w - left - right).clamp(60, 300);
    let step = scale_w / 10;
    for k in 0..10 {
        let x = left + k * step;
        let colour = heat((k as f64 + 0.5) / 10.0);
        area.draw(&Rectangle::new([(x, scale_y), (x + step, scale_y + 10)], colour.filled()))?;
    }
    let small = text(SMALL_PT).color(&MUTED);
    area.draw(&Text::new("0 %", (left, scale_y + 14), small.clone().pos(Pos::new(HPos::Left, VPos::Top))))?;
    area.draw(&Text::new(
        "100 %",
        (left + 10 * step, scale_y + 14),
        small.clone().pos(Pos::new(HPos::Right, VPos::Top)),
    ))?;
    area.draw(&Text::new(
        "trait rate",
        (left + 10 * step + 8, scale_y + 5),
        small.pos(Pos::new(HPos::Left, VPos::Center)),
    ))?;
    Ok(())
}

/// Two numeric axes with light gridlines, tick labels and axis titles: the frame the line
/// and scatter charts draw into.
fn xy_frame<'a, 'b>(
    plot: &'a Area<'b>,
    x_range: &Range<f64>,
    y_range: &Range<f64>,
    x_label: &str,
    y_label: &str,
) -> Result<XyChart<'a, 'b>, DrawingAreaErrorKind<std::io::Error>> {
    let mut ctx = ChartBuilder::on(plot)
        .margin(10)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x_range.clone(), y_range.clone())?;
    let (x_tick, y_tick) = (tick_format(x_range), tick_format(y_range));
    let (x_chars, y_chars) = axis_chars(plot);
    ctx.configure_mesh()
        .bold_line_style(BLACK.mix(0.15))
        .light_line_style(BLACK.mix(0.05))
        .max_light_lines(1)
        .x_label_formatter(&x_tick)
        .y_label_formatter(&y_tick)
        .x_desc(clean(x_label, x_chars))
        .y_desc(clean(y_label, y_chars))
        .label_style(text(LABEL_PT))
        .axis_desc_style(text(LABEL_PT))
        .draw()?;
    Ok(ctx)
}

/// How many characters of an axis' title fit along the x and the (vertical) y axis of a plot
/// area: its side less the tick labels' room, so a long title is shortened, not cut off.
fn axis_chars(plot: &Area<'_>) -> (usize, usize) {
    let (w, h) = plot.dim_in_pixel();
    let fit = |side: u32| (side.saturating_sub(70) / CHAR_PX).max(8) as usize;
    (fit(w), fit(h))
}

/// The chart's title above everything else; returns the area below it. A title too long
/// for one line is wrapped at spaces onto more (a chart on a phone is 340 px wide); only
/// what does not fit on three lines is cut, with an ellipsis.
fn titled<'a>(root: &Area<'a>, title: &str) -> Result<Area<'a>, DrawingAreaErrorKind<std::io::Error>> {
    let width = root.dim_in_pixel().0;
    let max_chars = (width / TITLE_CHAR_PX).max(8) as usize;
    let lines = wrap(&clean(title, 3 * max_chars), max_chars, 3);
    if lines.is_empty() {
        return Ok(root.margin(8, 0, 0, 0));
    }
    let style = text(TITLE_PT).pos(Pos::new(HPos::Center, VPos::Top));
    for (i, line) in lines.iter().enumerate() {
        root.draw(&Text::new(line.clone(), (width as i32 / 2, 6 + i as i32 * TITLE_LINE_PX), style.clone()))?;
    }
    Ok(root.split_vertically(10 + lines.len() as i32 * TITLE_LINE_PX).1)
}

/// Splits `text` at spaces into at most `max_lines` lines of at most `max_chars` characters;
/// a word longer than a line is cut, and text left over ends the last line with an ellipsis.
fn wrap(text: &str, max_chars: usize, max_lines: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let fits = current.is_empty() || current.chars().count() + 1 + word.chars().count() <= max_chars;
        if !fits {
            lines.push(std::mem::take(&mut current));
            if lines.len() == max_lines {
                let last = lines.pop().unwrap_or_default();
                lines.push(clean(&format!("{last} {word}…"), max_chars));
                return lines;
            }
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
        if current.chars().count() > max_chars {
            current = clean(&current, max_chars);
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

fn no_data(root: &Area<'_>, title: &str) -> Drawn {
    let area = titled(root, title)?;
    let (w, h) = area.dim_in_pixel();
    let style = text(LABEL_PT).color(&MUTED).pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new("no data", (w as i32 / 2, h as i32 / 2), style))
}

#[derive(Clone, Copy)]
enum Swatch {
    /// A filled square, for dots.
    Box,
    /// A short stroke, dashed for series that draw dashed.
    Line,
}

/// Splits off a column on the right for the legend, as wide as its longest name up to a
/// third of the chart (longer names are shortened); on a narrow chart, rows under the plot
/// instead, at most half its height, so that names are not cut to a few letters. No
/// names, no legend.
fn split_legend<'a>(area: &Area<'a>, names: &[&str]) -> (Area<'a>, Area<'a>) {
    let (w, h) = area.dim_in_pixel();
    if w < NARROW_PX && !names.is_empty() {
        let rows_px = (names.len() as u32 * LEGEND_ROW_PX as u32 + 24).min(h / 2);
        return area.split_vertically(h - rows_px);
    }
    let longest = names.iter().map(|n| n.chars().count() as u32).max().unwrap_or(0);
    let legend_px = if names.is_empty() { 0 } else { (longest * CHAR_PX + 44).max(80).min(w / 3) };
    area.split_horizontally(w - legend_px)
}

fn draw_legend(area: &Area<'_>, names: &[&str], swatch: Swatch) -> Drawn {
    let (w, h) = area.dim_in_pixel();
    if names.is_empty() || w == 0 {
        return Ok(());
    }
    let max_chars = (w.saturating_sub(44) / CHAR_PX).max(4) as usize;
    let rows = ((h as i32 - 20) / LEGEND_ROW_PX).max(1) as usize;
    // When the names do not all fit, the last row says how many are left out.
    let listed = if names.len() <= rows { names.len() } else { rows - 1 };
    let style = text(LABEL_PT).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, name) in names.iter().take(listed).enumerate() {
        let y = 20 + i as i32 * LEGEND_ROW_PX;
        match swatch {
            Swatch::Box => area.draw(&Rectangle::new([(4, y - 5), (14, y + 5)], colour(i).filled()))?,
            Swatch::Line if dashed(i) => {
                area.draw(&DashedPathElement::new([(0, y), (18, y)], 5, 3, colour(i).stroke_width(2)))?
            }
            Swatch::Line => area.draw(&PathElement::new([(0, y), (18, y)], colour(i).stroke_width(2)))?,
        }
        area.draw(&Text::new(clean(name, max_chars), (24, y), style.clone()))?;
    }
    if listed < names.len() {
        let y = 20 + listed as i32 * LEGEND_ROW_PX;
        let more = format!("+ {} more", names.len() - listed);
        area.draw(&Text::new(more, (24, y), style.color(&MUTED)))?;
    }
    Ok(())
}

fn threshold_name(axis: &str, fallback: &str, at: f64) -> String {
    let axis = clean(axis, 24);
    let axis = if axis.is_empty() { fallback.to_string() } else { axis };
    format!("{axis} = {}", number(at))
}

fn text(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK)
}

fn colour(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

fn dashed(index: usize) -> bool {
    (index / PALETTE.len()) % 2 == 1
}

fn percent(proportion: f64) -> f64 {
    proportion.clamp(0.0, 1.0) * 100.0
}

fn usable(v: f64) -> bool {
    v.is_finite() && v.abs() <= MAX_VALUE
}

/// The distinct names in order of first occurrence, and each one's index.
fn first_seen<'a>(names: impl Iterator<Item = &'a str>) -> (Vec<&'a str>, HashMap<&'a str, usize>) {
    let mut order = Vec::new();
    let mut index = HashMap::new();
    for name in names {
        index.entry(name).or_insert_with(|| {
            order.push(name);
            order.len() - 1
        });
    }
    (order, index)
}

/// The range the values span, widened by `pad` of its width on both sides; a single value
/// gets a range around it, since an axis of width zero cannot be drawn. `None` when empty.
fn extent(values: impl Iterator<Item = f64>, pad: f64) -> Option<Range<f64>> {
    let (lo, hi) = values.fold(None, |acc: Option<(f64, f64)>, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })?;
    let width = hi - lo;
    if width <= lo.abs().max(hi.abs()) * 1e-9 {
        let half = (lo.abs() * 0.1).max(1.0);
        return Some(lo - half..hi + half);
    }
    Some(lo - width * pad..hi + width * pad)
}

fn given_or_fitted(given: Option<(f64, f64)>, values: impl Iterator<Item = f64>) -> Option<Range<f64>> {
    match given {
        Some((lo, hi)) if usable(lo) && usable(hi) && lo < hi => Some(lo..hi),
        _ => extent(values, 0.05),
    }
}

/// A threshold as people write it: `50`, `0.5`, not `50.0` or `0.30000000000000004`.
fn number(v: f64) -> String {
    trim_zeros(&format!("{v:.4}"))
}

/// Tick labels with as many decimals as the axis' span needs, and no more: plotters' own
/// labels always show a decimal (`20.0`) and write 1e14 out in full, which overflows the
/// label area. Scientific notation from a million up.
fn tick_format(range: &Range<f64>) -> impl Fn(&f64) -> String {
    let span_exp = (range.end - range.start).abs().max(f64::MIN_POSITIVE).log10().floor() as i32;
    let magnitude = range.start.abs().max(range.end.abs());
    move |v: &f64| {
        // Tick arithmetic leaves 1e-17 where 0 was meant.
        if v.abs() < 10f64.powi(span_exp - 6) {
            return "0".to_string();
        }
        if magnitude >= 1e6 {
            let magnitude_exp = magnitude.log10().floor() as i32;
            let decimals = (2 + magnitude_exp - span_exp).clamp(0, 6) as usize;
            let s = format!("{v:.decimals$e}");
            match s.split_once('e') {
                Some((mantissa, exp)) => format!("{}e{exp}", trim_zeros(mantissa)),
                None => s,
            }
        } else {
            let decimals = (2 - span_exp).clamp(0, 12) as usize;
            trim_zeros(&format!("{v:.decimals$}"))
        }
    }
}

/// `2.50` -> `2.5`, `20.00` -> `20`, `-0.00` -> `0`.
fn trim_zeros(s: &str) -> String {
    let t = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { s };
    if t == "-0" {
        "0".to_string()
    } else {
        t.to_string()
    }
}

/// Makes a user's string safe and short enough to draw: control characters (which XML 1.0
/// cannot carry, escaped or not) and the non-characters U+FFFE/U+FFFF become spaces, and a
/// string longer than `max_chars` is cut with an ellipsis. Escaping `<`, `&` and quotes is
/// left to plotters' SVG backend, which does it for all text and attributes.
fn clean(text: &str, max_chars: usize) -> String {
    let text: String =
        text.chars().map(|c| if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' { ' ' } else { c }).collect();
    let text = text.trim();
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

// ---------------------------------------------------------------------------------------
// PNG

/// Families tried, in order, for the SVGs' generic `sans-serif`: fontdb maps it to Arial,
/// which Debian does not ship.
const SANS_FAMILIES: [&str; 4] = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial"];

/// The system's fonts, scanned once per process (a scan reads every font file's header).
fn system_fonts() -> Arc<fontdb::Database> {
    static FONTS: OnceLock<Arc<fontdb::Database>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let mut db = fontdb::Database::new();
            db.load_system_fonts();
            let families: Vec<String> =
                db.faces().flat_map(|f| f.families.iter().map(|(name, _)| name.clone())).collect();
            let sans = SANS_FAMILIES
                .iter()
                .map(|f| f.to_string())
                .find(|f| families.contains(f))
                .or_else(|| families.first().cloned());
            match sans {
                Some(family) => db.set_sans_serif_family(family),
                None => tracing::warn!("no system fonts: text is left out of chart PNGs"),
            }
            Arc::new(db)
        })
        .clone()
}

fn png_with_fonts(svg: &str, scale: f32, fonts: Arc<fontdb::Database>) -> Result<Vec<u8>, ChartError> {
    if !(scale.is_finite() && scale > 0.0) {
        return Err(ChartError::Scale(scale));
    }
    let options = usvg::Options { fontdb: fonts, ..usvg::Options::default() };
    let tree = usvg::Tree::from_str(svg, &options)?;
    let width = (tree.size().width() * scale).ceil() as u64;
    let height = (tree.size().height() * scale).ceil() as u64;
    let too_large = || ChartError::TooLarge { width, height };
    if width > MAX_PNG_SIDE as u64 || height > MAX_PNG_SIDE as u64 {
        return Err(too_large());
    }
    let mut pixmap = tiny_skia::Pixmap::new(width as u32, height as u32).ok_or_else(too_large)?;
    resvg::render(&tree, tiny_skia::Transform::from_scale(scale, scale), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| ChartError::Png(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_replaces_controls_and_shortens() {
        assert_eq!(clean(" a\u{0}b\nc\u{FFFF} ", 10), "a b c");
        assert_eq!(clean("abcdef", 4), "abc…");
        assert_eq!(clean("<&>", 3), "<&>");
    }

    #[test]
    fn extent_widens_a_single_value() {
        assert_eq!(extent([5.0].into_iter(), 0.05), Some(4.0..6.0));
        assert_eq!(extent(std::iter::empty(), 0.05), None);
        assert_eq!(extent([0.0, 10.0].into_iter(), 0.1), Some(-1.0..11.0));
    }

    #[test]
    fn numbers_read_as_written() {
        assert_eq!(number(50.0), "50");
        assert_eq!(number(0.1 + 0.2), "0.3");
        assert_eq!(number(-2.5), "-2.5");
    }

    #[test]
    fn ticks_have_the_decimals_the_span_needs() {
        let check = |range: Range<f64>, v: f64, want: &str| assert_eq!(tick_format(&range)(&v), want);
        check(0.0..200.0, 20.0, "20");
        check(-2.4..-1.4, -2.3, "-2.3");
        check(0.0..2.5, 0.25, "0.25");
        check(0.0..0.001, 0.0002, "0.0002");
        check(-1.0..1.0, -1e-17, "0");
        check(-1e14..1e14, -8e13, "-8e13");
        check(-1e14..1e14, 0.0, "0");
        check(1e9..1.001e9, 1.0005e9, "1.0005e9");
    }

    // A server without fonts still gets a PNG: text is skipped, shapes are drawn.
    #[test]
    fn png_renders_without_fonts() {
        let svg = line_chart(&LineChart {
            title: "no fonts".into(),
            series: vec![Series { name: "a".into(), points: vec![(0.0, 1.0), (1.0, 2.0)], group: None }],
            ..LineChart::default()
        });
        let png = png_with_fonts(&svg, 1.0, Arc::new(fontdb::Database::new())).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    }
}
