//! `--report FILE.html`: one self-contained page per run, so that two runs can be compared by eye.
//!
//! The page holds the command line and summary, throughput over time (one point per `--interval`), the
//! interval p50/p99 latencies over time, and the whole run's latency percentile curves, drawn as
//! HdrHistogram plots them: x is the percentile on a log scale of 1/(1 − q) (so 99 %, 99.9 % and 99.99 %
//! are equally spaced), y the latency. Charts are inline SVG written here; the page loads nothing.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

/// One `--interval` of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Interval {
    /// Seconds since measuring began, at the end of the interval.
    pub t_s: f64,
    pub send_msgs_per_s: f64,
    pub send_mb_per_s: f64,
    pub consume_msgs_per_s: f64,
    pub send_p50_us: u64,
    pub send_p99_us: u64,
    pub e2e_p50_us: u64,
    pub e2e_p99_us: u64,
}

/// The deepest percentile a curve goes to: 99.9999 % (x = 10^6); beyond it the max is its last point.
const CURVE_NINES_MAX: u32 = 6;
/// Points per decade of 1/(1 − q) on a curve.
const CURVE_POINTS_PER_DECADE: u32 = 8;

/// (q, latency µs) points of a percentile curve, from the median to the max; empty for an empty histogram.
pub fn percentile_curve(h: &Histogram<u64>) -> Vec<(f64, u64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    // Enough nines for the samples there are: the 99.99 % of 1,000 samples is the max.
    let nines = ((h.len() as f64).log10().ceil() as u32).clamp(1, CURVE_NINES_MAX);
    let steps = nines * CURVE_POINTS_PER_DECADE;
    for i in 0..=steps {
        // 1/(1 − q) from 2 (the median) to 10^nines, evenly on a log scale.
        let x = 2f64 * (10f64.powi(nines as i32) / 2.0).powf(i as f64 / steps as f64);
        let q = 1.0 - 1.0 / x;
        out.push((q, h.value_at_quantile(q)));
    }
    out.push((1.0, h.max()));
    out
}

/// A curve to draw: its name, colour and points.
pub struct Series<'a> {
    pub name: &'a str,
    pub colour: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// Writes the page.
pub fn write_html(
    path: &std::path::Path,
    command: &str,
    summary: &serde_json::Value,
    intervals: &[Interval],
    curves: &[(&str, Vec<(f64, u64)>)],
) -> std::io::Result<()> {
    std::fs::write(path, html(command, summary, intervals, curves))
}

/// The page as text.
pub fn html(
    command: &str,
    summary: &serde_json::Value,
    intervals: &[Interval],
    curves: &[(&str, Vec<(f64, u64)>)],
) -> String {
    let mut o = String::new();
    let title = format!("apogee-perf: {}", escape(command));
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title>\n<style>\
         body{{font-family:sans-serif;margin:2em;color:#222}} code,pre{{background:#f4f4f4;padding:2px 4px}}\
         svg{{border:1px solid #ddd;background:#fff;margin:0.5em 0}} td{{padding:2px 8px}}</style></head><body>\n\
         <h1>apogee-perf report</h1>\n<p><code>{}</code></p>\n",
        escape(command)
    );
    o.push_str("<h2>Summary</h2>\n<pre>");
    o.push_str(&escape(
        &serde_json::to_string_pretty(summary).unwrap_or_default(),
    ));
    o.push_str("</pre>\n");

    let at = |f: fn(&Interval) -> f64| -> Vec<(f64, f64)> {
        intervals.iter().map(|i| (i.t_s, f(i))).collect()
    };
    o.push_str("<h2>Throughput over time</h2>\n");
    o.push_str(&chart(
        "messages per second",
        "seconds",
        false,
        &[
            Series {
                name: "sent msg/s",
                colour: "#1f77b4",
                points: at(|i| i.send_msgs_per_s),
            },
            Series {
                name: "consumed msg/s",
                colour: "#2ca02c",
                points: at(|i| i.consume_msgs_per_s),
            },
        ],
    ));
    o.push_str("<h2>Latency over time (per interval)</h2>\n");
    o.push_str(&chart(
        "µs",
        "seconds",
        false,
        &[
            Series {
                name: "send p50",
                colour: "#aec7e8",
                points: at(|i| i.send_p50_us as f64),
            },
            Series {
                name: "send p99",
                colour: "#1f77b4",
                points: at(|i| i.send_p99_us as f64),
            },
            Series {
                name: "e2e p50",
                colour: "#98df8a",
                points: at(|i| i.e2e_p50_us as f64),
            },
            Series {
                name: "e2e p99",
                colour: "#2ca02c",
                points: at(|i| i.e2e_p99_us as f64),
            },
        ],
    ));
    o.push_str("<h2>Latency percentile curves (whole run)</h2>\n");
    let colours = ["#1f77b4", "#2ca02c", "#d62728", "#9467bd"];
    let series: Vec<Series> = curves
        .iter()
        .zip(colours.iter().cycle())
        .filter(|((_, pts), _)| !pts.is_empty())
        .map(|((name, pts), colour)| Series {
            name,
            colour,
            points: curve_points(pts),
        })
        .collect();
    o.push_str(&chart("µs", "percentile", true, &series));
    o.push_str("<table><tr><th>curve</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>p99.99</th><th>max</th></tr>\n");
    for (name, pts) in curves.iter().filter(|(_, p)| !p.is_empty()) {
        let at_q = |q: f64| {
            pts.iter()
                .find(|(pq, _)| *pq >= q - 1e-9)
                .map_or(0, |(_, us)| *us)
        };
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            at_q(0.5),
            at_q(0.9),
            at_q(0.99),
            at_q(0.999),
            at_q(0.9999),
            pts.last().map_or(0, |p| p.1)
        );
    }
    o.push_str("</table>\n<p>Latencies in µs.</p>\n</body></html>\n");
    o
}

const WIDTH: f64 = 820.0;
const HEIGHT: f64 = 320.0;
const MARGIN_LEFT: f64 = 70.0;
const MARGIN_BOTTOM: f64 = 40.0;
const MARGIN_TOP: f64 = 20.0;
const MARGIN_RIGHT: f64 = 150.0;

/// An SVG line chart. `percentile_axis`: x values are log10(1/(1 − q)) and ticks read as percentiles.
fn chart(y_label: &str, x_label: &str, percentile_axis: bool, series: &[Series]) -> String {
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut x_max, mut y_max) = (0f64, 0f64);
    let mut x_min = f64::MAX;
    for (x, y) in all {
        x_max = x_max.max(*x);
        x_min = x_min.min(*x);
        y_max = y_max.max(*y);
    }
    if x_min == f64::MAX {
        return "<p>(no data)</p>\n".into();
    }
    if percentile_axis {
        x_min = 0.0;
    } else {
        x_min = x_min.min(0.0);
    }
    let x_span = (x_max - x_min).max(1e-9);
    let y_max = nice_ceiling(y_max.max(1.0));
    let plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    let plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
    let px = |x: f64| MARGIN_LEFT + (x - x_min) / x_span * plot_w;
    let py = |y: f64| MARGIN_TOP + plot_h - y / y_max * plot_h;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" font-size=\"11\">"
    );
    // Axes and grid.
    for k in 0..=4 {
        let y = y_max * k as f64 / 4.0;
        let _ = writeln!(
            o,
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            px(x_min), py(y), px(x_max), py(y), MARGIN_LEFT - 4.0, py(y) + 4.0, short(y)
        );
    }
    let ticks: Vec<(f64, String)> = if percentile_axis {
        (0..=x_max.round() as i32)
            .map(|d| {
                let q = 100.0 * (1.0 - 10f64.powi(-d));
                let decimals = (d - 2).max(0) as usize;
                (d as f64, format!("{q:.decimals$}%"))
            })
            .collect()
    } else {
        let step = nice_ceiling(x_span / 6.0);
        (0..=6)
            .map(|k| x_min + step * k as f64)
            .map(|x| (x, short(x)))
            .collect()
    };
    for (x, label) in ticks.iter().filter(|(x, _)| *x <= x_max + 1e-9) {
        let _ = writeln!(
            o,
            "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"#eee\"/><text x=\"{0:.1}\" y=\"{3:.1}\" text-anchor=\"middle\">{4}</text>",
            px(*x), MARGIN_TOP, MARGIN_TOP + plot_h, MARGIN_TOP + plot_h + 14.0, escape(label)
        );
    }
    let _ = writeln!(
        o,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text><text x=\"12\" y=\"{:.1}\" transform=\"rotate(-90 12 {:.1})\" text-anchor=\"middle\">{}</text>",
        MARGIN_LEFT + plot_w / 2.0, HEIGHT - 6.0, escape(x_label), MARGIN_TOP + plot_h / 2.0, MARGIN_TOP + plot_h / 2.0, escape(y_label)
    );
    for (i, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .points
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = writeln!(
            o,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>",
            s.colour,
            points.join(" ")
        );
        let ly = MARGIN_TOP + 14.0 * i as f64 + 6.0;
        let lx = WIDTH - MARGIN_RIGHT + 10.0;
        let _ = writeln!(
            o,
            "<line x1=\"{lx:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{}\" stroke-width=\"3\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            lx + 16.0, s.colour, lx + 20.0, ly + 4.0, escape(s.name)
        );
    }
    o.push_str("</svg>\n");
    o
}

/// A percentile curve in chart coordinates: x = log10(1/(1 − q)). The max (q = 1) has no place on that
/// axis; it is drawn at the deepest percentile's x, as the curve's last vertical step.
fn curve_points(pts: &[(f64, u64)]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(pts.len());
    for (q, us) in pts {
        let x = if *q >= 1.0 {
            out.last().map_or(0.0, |p| p.0)
        } else {
            (1.0 / (1.0 - q)).log10()
        };
        out.push((x, *us as f64));
    }
    out
}

/// The smallest 1, 2 or 5 × 10^k at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * p)
}

fn short(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", trim_float(v / 1e6))
    } else if v >= 1e3 {
        format!("{}k", trim_float(v / 1e3))
    } else {
        trim_float(v)
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in values {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn a_curve_runs_from_the_median_to_the_max_and_never_falls() {
        let h = histogram(1..=10_000);
        let curve = percentile_curve(&h);
        assert!((curve[0].0 - 0.5).abs() < 1e-9, "{:?}", curve[0]);
        assert!((4_990..=5_010).contains(&curve[0].1), "{:?}", curve[0]);
        assert_eq!(curve.last().unwrap(), &(1.0, h.max()));
        assert!(curve
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        // 10,000 samples: four nines, no deeper.
        let deepest = curve[curve.len() - 2].0;
        assert!((deepest - 0.9999).abs() < 1e-9, "{deepest}");
        assert!(percentile_curve(&histogram([])).is_empty());
    }

    #[test]
    fn the_page_is_self_contained_and_escapes_what_it_quotes() {
        let h = histogram([100, 200, 300, 5_000]);
        let intervals = [
            Interval {
                t_s: 1.0,
                send_msgs_per_s: 1_000.0,
                send_p99_us: 900,
                ..Default::default()
            },
            Interval {
                t_s: 2.0,
                send_msgs_per_s: 1_200.0,
                send_p99_us: 800,
                ..Default::default()
            },
        ];
        let page = html(
            "produce --topic <x>",
            &serde_json::json!({"sent": 2200}),
            &intervals,
            &[("send→ack", percentile_curve(&h)), ("e2e", Vec::new())],
        );
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("produce --topic &lt;x&gt;"));
        assert!(!page.contains("<x>"));
        assert_eq!(page.matches("<svg").count(), 3);
        assert!(
            !page.contains("src=") && !page.contains("href="),
            "loads nothing"
        );
        // Two throughput series, four latency-over-time series, one (non-empty) percentile curve.
        assert_eq!(page.matches("<polyline").count(), 7, "{page}");
        assert!(page.contains("<td>send→ack</td>"));
        assert!(!page.contains("<td>e2e</td>"), "an empty curve is left out");
        assert!(
            page.contains("<td>5003</td>") || page.contains("<td>5000</td>"),
            "max in the table"
        );
    }

    #[test]
    fn axis_ceilings_are_round() {
        assert_eq!(nice_ceiling(730.0), 1_000.0);
        assert_eq!(nice_ceiling(1_200.0), 2_000.0);
        assert_eq!(nice_ceiling(4_100.0), 5_000.0);
        assert_eq!(short(2_000.0), "2k");
        assert_eq!(short(1_500_000.0), "1.5M");
    }
}
