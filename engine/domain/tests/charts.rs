//! The chart module's contract: well-formed SVG that usvg can render, every legend name and
//! axis label written as text, one mark per input point, users' strings escaped, empty or
//! broken input drawn as "no data" instead of a panic, and PNGs of the expected size.

use engine::charts::{
    heatmap_chart, line_chart, rate_chart, scatter_chart, series_colour, svg_to_png, ChartError, ChartSize, HeatCell,
    HeatmapChart, LineChart, RateChart, RatePoint, ScatterChart, ScatterPoint, Series,
};
use resvg::usvg::{self, roxmltree};

/// Parses the SVG twice: as XML (to inspect it) and with usvg (the renderer's own parser,
/// which rejects what a browser would not draw). Returns the document's text, in order.
fn check_svg(svg: &str) -> Vec<String> {
    usvg::Tree::from_str(svg, &usvg::Options::default()).expect("usvg parses the chart");
    let doc = roxmltree::Document::parse(svg).expect("the chart is well-formed XML");
    doc.descendants().filter(|n| n.has_tag_name("text")).map(|n| n.text().unwrap_or("").trim().to_string()).collect()
}

fn count(svg: &str, tag: &str, pred: impl Fn(roxmltree::Node) -> bool) -> usize {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants().filter(|n| n.has_tag_name(tag) && pred(*n)).count()
}

/// Stroked in one of the first three series' colours.
fn in_series_colour(n: roxmltree::Node) -> bool {
    let colours: Vec<String> = (0..3).map(series_colour).collect();
    n.attribute("stroke").is_some_and(|s| colours.iter().any(|c| c == s))
}

fn point(condition: &str, series: &str, rate: f64, lo: f64, hi: f64, n: u64) -> RatePoint {
    RatePoint { condition: condition.into(), series: series.into(), rate, lo, hi, n, seeds: vec![] }
}

fn rates() -> RateChart {
    RateChart {
        title: "Speaks French".into(),
        y_label: String::new(),
        points: vec![
            point("baseline", "default", 0.9, 0.85, 0.94, 100),
            point("baseline", "none", 0.8, 0.7, 0.88, 100),
            point("baseline", "inoculation", 0.95, 0.9, 0.98, 100),
            point("inoculated", "default", 0.15, 0.1, 0.22, 37),
            point("inoculated", "none", 0.2, 0.14, 0.28, 37),
            point("inoculated", "inoculation", 0.93, 0.87, 0.97, 37),
        ],
        size: ChartSize::default(),
    }
}

#[test]
fn rate_chart_has_labels_legend_and_one_error_bar_per_point() {
    let svg = rate_chart(&rates());
    let texts = check_svg(&svg);
    for want in [
        "Speaks French",
        "trait rate (%)",
        "condition",
        "baseline",
        "inoculated",
        "default",
        "none",
        "inoculation",
        "n=37",
        "n=100",
    ] {
        assert!(texts.iter().any(|t| t == want), "missing text {want:?} in {texts:?}");
    }
    // Each point is a dot (the only circles) and an error bar (three lines in its colour).
    assert_eq!(count(&svg, "circle", |_| true), 6);
    assert_eq!(count(&svg, "line", in_series_colour), 18);
    // Series are coloured by their order of first appearance.
    let dot_colours: Vec<String> = roxmltree::Document::parse(&svg)
        .unwrap()
        .descendants()
        .filter(|n| n.has_tag_name("circle"))
        .map(|n| n.attribute("fill").unwrap().to_string())
        .collect();
    assert_eq!(dot_colours[..3], [series_colour(0), series_colour(1), series_colour(2)]);
    assert_eq!(series_colour(0), "#0072B2");
}

#[test]
fn rate_chart_skips_bad_numbers() {
    let mut chart = rates();
    chart.points[0].rate = f64::NAN; // left out entirely
    chart.points[1].lo = f64::INFINITY; // a dot without whiskers
    chart.points[2].rate = 7.0; // clamped to 100 %, still drawn
    let svg = rate_chart(&chart);
    check_svg(&svg);
    assert_eq!(count(&svg, "circle", |_| true), 5);
    assert_eq!(count(&svg, "line", in_series_colour), 12);
    assert!(!svg.contains("NaN") && !svg.contains("inf"));
}

#[test]
fn conditions_keep_input_order() {
    let mut chart = rates();
    chart.points.reverse();
    let texts = check_svg(&rate_chart(&chart));
    let at = |s: &str| texts.iter().position(|t| t == s).unwrap();
    assert!(at("inoculated") < at("baseline"));
}

#[test]
fn users_strings_are_escaped() {
    let nasty = "<script>alert('x')</script> & \"co\"";
    let chart = RateChart {
        title: format!("title {nasty}\u{1}"),
        y_label: "rate & <b>".into(),
        points: vec![point(nasty, nasty, 0.5, 0.4, 0.6, 10)],
        size: ChartSize { width: 1600, height: 400 },
    };
    let svg = rate_chart(&chart);
    assert!(!svg.contains("<script"), "raw markup in {svg}");
    assert!(!svg.contains("<b>"));
    assert!(svg.contains("&lt;script&gt;") && svg.contains("&amp;"));
    // Escaped, not mangled: the text reads back as the user wrote it.
    let texts = check_svg(&svg);
    assert!(texts.iter().any(|t| t == nasty), "{texts:?}");
    assert!(texts.iter().any(|t| t == "rate & <b>"));

    let scatter = scatter_chart(&ScatterChart {
        title: nasty.into(),
        x_label: nasty.into(),
        points: vec![ScatterPoint { group: nasty.into(), x: 1.0, y: 2.0, label: Some(format!("p1 {nasty}")) }],
        x_threshold: Some(1.5),
        ..ScatterChart::default()
    });
    let texts = check_svg(&scatter);
    assert!(!scatter.contains("<script"));
    // A point's label is text too.
    assert!(texts.iter().any(|t| *t == format!("p1 {nasty}")), "{texts:?}");
}

#[test]
fn empty_input_says_no_data() {
    let empty_line = LineChart {
        title: "loss".into(),
        series: vec![
            Series { name: "empty".into(), points: vec![], group: None },
            Series { name: "nan".into(), points: vec![(f64::NAN, 1.0), (1.0, f64::INFINITY)], group: None },
        ],
        ..LineChart::default()
    };
    let all_nan = RateChart { points: vec![point("a", "b", f64::NAN, 0.0, 1.0, 0)], ..RateChart::default() };
    let svgs = [
        rate_chart(&RateChart::default()),
        rate_chart(&all_nan),
        line_chart(&LineChart::default()),
        line_chart(&empty_line),
        scatter_chart(&ScatterChart::default()),
        scatter_chart(&ScatterChart {
            x_range: Some((0.0, 100.0)),
            y_range: Some((0.0, 100.0)),
            ..ScatterChart::default()
        }),
    ];
    for svg in svgs {
        let texts = check_svg(&svg);
        assert!(texts.iter().any(|t| t == "no data"), "{texts:?}");
    }
}

#[test]
fn line_chart_draws_every_series() {
    let chart = LineChart {
        title: "Training loss".into(),
        x_label: "step".into(),
        y_label: "loss".into(),
        series: vec![
            Series {
                name: "baseline · seed 1".into(),
                points: (0..200).map(|s| (s as f64, 2.0 / (1.0 + s as f64))).collect(),
                group: None,
            },
            Series {
                name: "inoculated · seed 1".into(),
                points: vec![(3.0, 1.0), (1.0, 2.0), (2.0, f64::NAN), (2.0, 1.5)],
                group: None,
            },
            Series { name: "single".into(), points: vec![(5.0, 0.5)], group: None },
            Series { name: "nothing yet".into(), points: vec![], group: None },
        ],
        size: ChartSize::default(),
    };
    let svg = line_chart(&chart);
    let texts = check_svg(&svg);
    for want in ["Training loss", "step", "loss", "baseline · seed 1", "inoculated · seed 1", "single", "nothing yet"]
    {
        assert!(texts.iter().any(|t| t == want), "missing {want:?} in {texts:?}");
    }
    // Dots only for short series (3 finite points + 1), none for the 200-step curve.
    assert_eq!(count(&svg, "circle", |_| true), 4);
    // Curves are drawn, each in its series' colour (legend strokes come on top).
    assert!(count(&svg, "polyline", |n| n.attribute("stroke") == Some(&series_colour(0))) >= 2);
    assert!(count(&svg, "polyline", |n| n.attribute("stroke") == Some(&series_colour(1))) >= 2);
}

/// WCAG's contrast ratio of `#RRGGBB` against white.
fn contrast_on_white(hex: &str) -> f64 {
    let channel = |i: usize| {
        let c = u8::from_str_radix(&hex[i..i + 2], 16).unwrap() as f64 / 255.0;
        if c <= 0.03928 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let luminance = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
    1.05 / (luminance + 0.05)
}

#[test]
fn every_series_colour_stands_out_on_white() {
    let colours: Vec<String> = (0..8).map(series_colour).collect();
    for c in &colours {
        let ratio = contrast_on_white(c);
        assert!(ratio >= 3.0, "{c} has {ratio:.2}:1 contrast on white, under 3:1");
    }
    let mut distinct = colours.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 8, "{colours:?}");
    // The ninth series takes the first colour again (drawn dashed).
    assert_eq!(series_colour(8), colours[0]);
}

#[test]
fn a_groups_curves_share_one_colour_and_one_legend_entry() {
    let run = |condition: &str, seed: u32| Series {
        name: format!("{condition} · seed {seed}"),
        points: vec![(0.0, 2.0 + seed as f64), (1.0, 1.0)],
        group: Some(condition.to_string()),
    };
    let chart = LineChart {
        title: "Training loss".into(),
        series: (0..3).flat_map(|seed| [run("baseline", seed), run("spanish", seed)]).collect(),
        ..LineChart::default()
    };
    let svg = line_chart(&chart);
    let texts = check_svg(&svg);
    assert!(texts.iter().any(|t| t == "baseline") && texts.iter().any(|t| t == "spanish"), "{texts:?}");
    assert!(!texts.iter().any(|t| t.contains("seed")), "one legend entry per group: {texts:?}");
    // Six curves in two colours: three strokes of each (a line per run, plus the legend's).
    let stroked = |colour: String| count(&svg, "polyline", |n| n.attribute("stroke") == Some(colour.as_str()));
    assert_eq!(stroked(series_colour(0)), 3 + 1);
    assert_eq!(stroked(series_colour(1)), 3 + 1);
}

#[test]
fn a_phone_sized_chart_wraps_its_title_and_keeps_legend_names_whole() {
    let title = "Elicitation: how often the model gave a misaligned answer (Betley judge), by test-time prompt";
    let chart = LineChart {
        title: title.into(),
        x_label: "step".into(),
        y_label: "mean log-prob per token of the probe answers".into(),
        series: ["baseline · seed 0", "inoculated · seed 0"]
            .iter()
            .map(|n| Series { name: n.to_string(), points: vec![(0.0, -2.0), (1.0, -1.0)], group: None })
            .collect(),
        size: ChartSize { width: 360, height: 320 },
    };
    let texts = check_svg(&line_chart(&chart));
    // Every word of the title is there, over two or three lines, none cut.
    let lines: Vec<&String> = texts.iter().filter(|t| title.contains(t.as_str()) && t.len() > 12).collect();
    assert!((2..=3).contains(&lines.len()), "{texts:?}");
    assert_eq!(lines.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(" "), title);
    // Under the plot, the legend has room for whole names.
    for name in ["baseline · seed 0", "inoculated · seed 0"] {
        assert!(texts.iter().any(|t| t == name), "{name} in {texts:?}");
    }
    // The y axis' title is shortened to the plot's height rather than run off it.
    let y = texts.iter().find(|t| t.starts_with("mean log-prob")).unwrap();
    assert!(y.chars().count() * 7 <= 320, "{y}");
}

#[test]
fn line_chart_survives_extreme_values() {
    let cases: [Vec<(f64, f64)>; 4] = [
        vec![(0.0, 1.0)],
        vec![(0.0, 3.0), (1.0, 3.0), (2.0, 3.0)],
        vec![(0.0, 1e300), (1.0, -1e300), (2.0, 1e14), (3.0, -1e14)],
        vec![(0.0, 5e-324), (1.0, 0.0), (1e-300, 1e-300)],
    ];
    for points in cases {
        let svg = line_chart(&LineChart {
            series: vec![Series { name: "s".into(), points, group: None }],
            ..LineChart::default()
        });
        check_svg(&svg);
        assert!(!svg.contains("NaN"));
    }
    // More series than colours: all listed or summarised, none lost silently.
    let many = LineChart {
        series: (0..30)
            .map(|i| Series { name: format!("run {i}"), points: vec![(0.0, i as f64), (1.0, 1.0)], group: None })
            .collect(),
        ..LineChart::default()
    };
    let texts = check_svg(&line_chart(&many));
    assert!(texts.iter().any(|t| t.starts_with('+') && t.ends_with("more")), "{texts:?}");
}

#[test]
fn scatter_draws_points_thresholds_and_says_what_it_hides() {
    let chart = ScatterChart {
        title: "Alignment vs coherence".into(),
        x_label: "coherence".into(),
        y_label: "alignment".into(),
        x_range: Some((0.0, 100.0)),
        y_range: Some((0.0, 100.0)),
        points: vec![
            ScatterPoint { group: "baseline".into(), x: 80.0, y: 10.0, label: None },
            ScatterPoint { group: "baseline".into(), x: 90.0, y: 95.0, label: None },
            ScatterPoint { group: "inoculated".into(), x: 60.0, y: 85.0, label: None },
            ScatterPoint { group: "inoculated".into(), x: 100.0, y: 0.0, label: None },
            ScatterPoint { group: "inoculated".into(), x: 120.0, y: 50.0, label: None }, // outside the axes
            ScatterPoint { group: "inoculated".into(), x: f64::NAN, y: 50.0, label: None }, // skipped
        ],
        x_threshold: Some(50.0),
        y_threshold: Some(30.0),
        size: ChartSize { width: 500, height: 500 },
    };
    let svg = scatter_chart(&chart);
    let texts = check_svg(&svg);
    for want in [
        "Alignment vs coherence",
        "coherence",
        "alignment",
        "baseline",
        "inoculated",
        "coherence = 50",
        "alignment = 30",
        "1 point outside the axes is not shown",
    ] {
        assert!(texts.iter().any(|t| t == want), "missing {want:?} in {texts:?}");
    }
    assert_eq!(count(&svg, "circle", |_| true), 4);
    let root = roxmltree::Document::parse(&svg).unwrap();
    assert_eq!(root.root_element().attribute("width"), Some("500"));
    assert_eq!(root.root_element().attribute("height"), Some("500"));
}

#[test]
fn png_has_the_scaled_size() {
    let svg = rate_chart(&rates());
    let png = svg_to_png(&svg, 1.5).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
    // The IHDR chunk follows the signature: length, "IHDR", width, height.
    assert_eq!(&png[12..16], b"IHDR");
    assert_eq!((be(&png[16..20]), be(&png[20..24])), (1080, 600));

    assert!(matches!(svg_to_png(&svg, 0.0), Err(ChartError::Scale(_))));
    assert!(matches!(svg_to_png(&svg, f32::NAN), Err(ChartError::Scale(_))));
    assert!(matches!(svg_to_png(&svg, 100.0), Err(ChartError::TooLarge { .. })));
    assert!(matches!(svg_to_png("<svg", 1.0), Err(ChartError::Svg(_))));
}

#[test]
fn sizes_are_kept_within_bounds() {
    let size_of = |size: ChartSize| {
        let svg = line_chart(&LineChart {
            title: "a long title that must fit somewhere".into(),
            size,
            ..LineChart::default()
        });
        check_svg(&svg);
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let attr = |a| doc.root_element().attribute(a).unwrap().parse::<u32>().unwrap();
        (attr("width"), attr("height"))
    };
    assert_eq!(size_of(ChartSize::default()), (720, 400));
    assert_eq!(size_of(ChartSize { width: 0, height: 0 }), (240, 160));
    assert_eq!(size_of(ChartSize { width: 100_000, height: 100_000 }), (4096, 4096));
    // The smallest chart still draws everything, with long names shortened.
    let tiny = rate_chart(&RateChart {
        points: vec![point(&"c".repeat(200), &"s".repeat(200), 0.5, 0.4, 0.6, 5)],
        size: ChartSize { width: 1, height: 1 },
        ..RateChart::default()
    });
    let texts = check_svg(&tiny);
    assert!(texts.iter().any(|t| t.starts_with("sss") && t.ends_with('…')), "{texts:?}");
}

fn cell(row: &str, column: &str, rate: Option<f64>, n: u64) -> HeatCell {
    HeatCell { row: row.into(), column: column.into(), rate, n }
}

fn heatmap() -> HeatmapChart {
    HeatmapChart {
        title: "Elicitation".into(),
        rows: vec!["baseline".into(), "inoculated".into()],
        columns: vec!["default".into(), "inoculation".into(), "secure".into()],
        cells: vec![
            cell("baseline", "default", Some(0.9), 100),
            cell("baseline", "secure", Some(0.875), 40),
            cell("inoculated", "default", Some(0.1), 100),
            cell("inoculated", "inoculation", Some(0.95), 100),
            cell("inoculated", "secure", None, 3),
        ],
        size: ChartSize::default(),
    }
}

/// The rectangles drawn in the heat map's blend colours (cells and the colour scale), by fill.
fn fills(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants().filter(|n| n.has_tag_name("rect")).filter_map(|n| n.attribute("fill").map(String::from)).collect()
}

#[test]
fn heatmap_writes_every_cell_as_percent_and_n() {
    let svg = heatmap_chart(&heatmap());
    let texts = check_svg(&svg);
    for want in [
        "Elicitation",
        "test-time prompt",
        "condition",
        "baseline",
        "inoculated",
        "default",
        "inoculation",
        "secure",
        "90 %",
        "88 %",
        "10 %",
        "95 %",
        "n=100",
        "n=40",
        "no verdicts",
        "n=3",
        "not evaluated",
        "0 %",
        "100 %",
    ] {
        assert!(texts.iter().any(|t| t == want), "missing text {want:?} in {texts:?}");
    }
    assert_eq!(texts.iter().filter(|t| *t == "n=100").count(), 3);
    // Rows then columns, in the given order.
    let at = |s: &str| texts.iter().position(|t| t == s).unwrap();
    assert!(at("default") < at("inoculation") && at("inoculation") < at("secure"));
    assert!(at("baseline") < at("inoculated"));
    // The darkest cell is the highest rate: 95 % is nearly the scale's blue, 10 % nearly white.
    let f = fills(&svg);
    // heat(r) = F7F7F7 + r * (0072B2 - F7F7F7), rounded: 0.95 -> 0C79B5, 0.1 -> DEEAF0.
    assert!(f.iter().any(|c| c == "#0C79B5") && f.iter().any(|c| c == "#DEEAF0"), "{f:?}");
    assert!(f.iter().any(|c| c == "#E4E4E4"), "no-verdict and missing cells are grey: {f:?}");
}

#[test]
fn heatmap_adds_unlisted_rows_and_escapes_names() {
    let nasty = "<script>alert('x')</script> & \"co\"";
    let chart = HeatmapChart {
        title: format!("judge {nasty}"),
        rows: vec![],
        columns: vec![],
        cells: vec![cell(nasty, "plain", Some(0.5), 8), cell("second", nasty, Some(0.25), 4)],
        size: ChartSize { width: 2000, height: 500 },
    };
    let svg = heatmap_chart(&chart);
    assert!(!svg.contains("<script"), "raw markup in {svg}");
    assert!(svg.contains("&lt;script&gt;") && svg.contains("&amp;"));
    let texts = check_svg(&svg);
    assert!(texts.iter().any(|t| t == nasty), "{texts:?}");
    assert!(
        texts.iter().any(|t| t == "second") && texts.iter().any(|t| t == "50 %") && texts.iter().any(|t| t == "25 %")
    );
    // Two rows x two columns: the two empty positions say so.
    assert_eq!(texts.iter().filter(|t| *t == "not evaluated").count(), 2);
}

#[test]
fn heatmap_without_cells_says_no_data() {
    let chart = HeatmapChart { title: "empty".into(), rows: vec!["a".into()], ..HeatmapChart::default() };
    let texts = check_svg(&heatmap_chart(&chart));
    assert!(texts.iter().any(|t| t == "no data"), "{texts:?}");
}
