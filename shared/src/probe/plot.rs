//! `--plot`: latency over time as inline SVG (no script, no network), the guide's
//! `vegeta plot` for step 4. Requests are grouped into narrow time columns; the chart draws each
//! column's p50, p99 and max, marks columns with failed requests in red along the top, and
//! draws the run's marks (the restart events of `rev-restart --probe`) as labelled vertical
//! lines. `.html` wraps the chart in a page with the text report and a table of the marks.

use std::fmt::Write as _;

use super::engine::ProbeRun;
use super::report::{Sample, go_duration, vegeta_round};

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
/// Most columns across the chart: one per two pixels keeps the SVG small for long runs.
const COLUMNS: usize = 450;

/// Figures of one time column.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Column {
    start_ns: u64,
    p50_ns: u64,
    p99_ns: u64,
    max_ns: u64,
    requests: usize,
    failed: usize,
}

fn columns(samples: &[Sample], span_ns: u64) -> Vec<Column> {
    let count = COLUMNS.min(samples.len().max(1));
    let width_ns = (span_ns / count as u64).max(1);
    let mut buckets: Vec<Vec<&Sample>> = vec![Vec::new(); count];
    for sample in samples {
        let i = ((sample.sent_ns / width_ns) as usize).min(count - 1);
        buckets[i].push(sample);
    }
    buckets
        .into_iter()
        .enumerate()
        .filter(|(_, b)| !b.is_empty())
        .map(|(i, bucket)| {
            let mut latencies: Vec<u64> = bucket.iter().map(|s| s.latency_ns).collect();
            latencies.sort_unstable();
            let at = |q: f64| {
                latencies
                    [((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1]
            };
            Column {
                start_ns: i as u64 * width_ns,
                p50_ns: at(0.50),
                p99_ns: at(0.99),
                max_ns: latencies[latencies.len() - 1],
                requests: bucket.len(),
                failed: bucket.iter().filter(|s| !s.succeeded()).count(),
            }
        })
        .collect()
}

/// A round axis maximum at or above `value` (1, 2 or 5 times a power of ten).
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&v| v >= value)
        .unwrap_or(10.0 * magnitude)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chart alone, as an SVG document.
pub fn render_svg(run: &ProbeRun, title: &str) -> String {
    let span_ns = run
        .samples
        .iter()
        .map(|s| s.sent_ns + s.latency_ns)
        .chain(run.marks.iter().map(|m| m.at_ns))
        .chain([run.stopped_ns])
        .max()
        .unwrap_or(0)
        .max(1_000_000_000);
    let cols = columns(&run.samples, span_ns);
    let chart = Chart {
        span_ns,
        top_ms: nice_ceiling(cols.iter().map(|c| c.max_ns).max().unwrap_or(0) as f64 / 1e6),
    };

    let mut svg = String::new();
    write_header(&mut svg, title);
    chart.write_axes(&mut svg);
    chart.write_series(&mut svg, &cols, run.samples.len());
    chart.write_error_marks(&mut svg, &cols);
    chart.write_events(&mut svg, run);
    write_legend(&mut svg);
    svg.push_str("</svg>\n");
    svg
}

/// The plot area's scales: time across, latency up.
struct Chart {
    span_ns: u64,
    top_ms: f64,
}

const PLOT_W: f64 = WIDTH - LEFT - RIGHT;
const PLOT_H: f64 = HEIGHT - TOP - BOTTOM;

impl Chart {
    fn x(&self, ns: u64) -> f64 {
        LEFT + PLOT_W * ns as f64 / self.span_ns as f64
    }

    fn y(&self, ns: u64) -> f64 {
        TOP + PLOT_H * (1.0 - (ns as f64 / 1e6 / self.top_ms).min(1.0))
    }

    /// Grid lines with their latency and time labels, and the axis titles.
    fn write_axes(&self, svg: &mut String) {
        let _ = writeln!(svg, r##"<g id="axes" stroke="#cccccc" fill="#333333">"##);
        for i in 0..=5 {
            let ms = self.top_ms * i as f64 / 5.0;
            let yy = TOP + PLOT_H * (1.0 - i as f64 / 5.0);
            let _ = writeln!(
                svg,
                r#"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}"/>"#,
                WIDTH - RIGHT
            );
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end" stroke="none">{}</text>"#,
                LEFT - 6.0,
                yy + 4.0,
                go_duration(vegeta_round((ms * 1e6) as u64))
            );
        }
        let span_s = self.span_ns as f64 / 1e9;
        let step_s = nice_ceiling(span_s / 8.0);
        let mut t = 0.0;
        while t <= span_s + 1e-9 {
            let xx = self.x((t * 1e9) as u64);
            let _ = writeln!(
                svg,
                r#"<line x1="{xx:.1}" y1="{TOP}" x2="{xx:.1}" y2="{:.1}"/>"#,
                TOP + PLOT_H
            );
            let _ = writeln!(
                svg,
                r#"<text x="{xx:.1}" y="{:.1}" text-anchor="middle" stroke="none">{}</text>"#,
                TOP + PLOT_H + 16.0,
                go_duration((t * 1e9) as u64)
            );
            t += step_s;
        }
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" stroke="none">time since start</text>"#,
            LEFT + PLOT_W / 2.0,
            HEIGHT - 8.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="14" y="{:.1}" text-anchor="middle" stroke="none" transform="rotate(-90 14 {:.1})">latency</text>"#,
            TOP + PLOT_H / 2.0,
            TOP + PLOT_H / 2.0
        );
        let _ = writeln!(svg, "</g>");
    }

    /// Latency series: one path per figure, a vertex per column.
    fn write_series(&self, svg: &mut String, cols: &[Column], requests: usize) {
        let _ = writeln!(
            svg,
            r#"<g id="latency-series" data-columns="{}" data-requests="{requests}" fill="none" stroke-width="1.5">"#,
            cols.len(),
        );
        for (class, colour, pick) in [
            (
                "latency-max",
                "#b0c4de",
                (|c: &Column| c.max_ns) as fn(&Column) -> u64,
            ),
            ("latency-p99", "#d95f02", |c: &Column| c.p99_ns),
            ("latency-p50", "#1b9e77", |c: &Column| c.p50_ns),
        ] {
            let mut d = String::new();
            for (i, c) in cols.iter().enumerate() {
                let _ = write!(
                    d,
                    "{}{:.1},{:.1}",
                    if i == 0 { "M" } else { " L" },
                    self.x(c.start_ns),
                    self.y(pick(c))
                );
            }
            let _ = writeln!(svg, r#"<path class="{class}" stroke="{colour}" d="{d}"/>"#);
        }
        let _ = writeln!(svg, "</g>");
    }

    /// Failed requests: a red tick above each column that had any.
    fn write_error_marks(&self, svg: &mut String, cols: &[Column]) {
        let _ = writeln!(svg, r##"<g id="errors" fill="#e7298a">"##);
        for c in cols.iter().filter(|c| c.failed > 0) {
            let _ = writeln!(
                svg,
                r#"<rect class="error-mark" x="{:.1}" y="{:.1}" width="2" height="8"><title>{} of {} failed at {}</title></rect>"#,
                self.x(c.start_ns),
                TOP - 10.0,
                c.failed,
                c.requests,
                go_duration(vegeta_round(c.start_ns))
            );
        }
        let _ = writeln!(svg, "</g>");
    }

    /// Events (restart started/finished), labels staggered so neighbours stay legible.
    fn write_events(&self, svg: &mut String, run: &ProbeRun) {
        let _ = writeln!(svg, r##"<g id="events" stroke="#555555" font-size="10">"##);
        for (i, mark) in run.marks.iter().enumerate() {
            let xx = self.x(mark.at_ns);
            let label_y = TOP + 12.0 + (i % 4) as f64 * 12.0;
            let _ = writeln!(
                svg,
                r##"<g class="event"><line x1="{xx:.1}" y1="{TOP}" x2="{xx:.1}" y2="{:.1}" stroke-dasharray="4 3"/><text x="{:.1}" y="{label_y:.1}" stroke="none" fill="#333333">{}</text><title>{} at {}</title></g>"##,
                TOP + PLOT_H,
                xx + 3.0,
                escape(&mark.label),
                escape(&mark.label),
                go_duration(vegeta_round(mark.at_ns))
            );
        }
        let _ = writeln!(svg, "</g>");
    }
}

/// The `<svg>` element, its accessible title, background and heading.
fn write_header(svg: &mut String, title: &str) {
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12" role="img" aria-label="{}">"#,
        escape(title)
    );
    let _ = writeln!(svg, r#"<title>{}</title>"#, escape(title));
    let _ = writeln!(
        svg,
        r##"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{}</text>"#,
        escape(title)
    );
}

fn write_legend(svg: &mut String) {
    let _ = writeln!(svg, r#"<g id="legend" font-size="11">"#);
    for (i, (colour, name)) in [
        ("#1b9e77", "p50"),
        ("#d95f02", "p99"),
        ("#b0c4de", "max"),
        ("#e7298a", "errors"),
    ]
    .iter()
    .enumerate()
    {
        let lx = WIDTH - RIGHT - 260.0 + i as f64 * 65.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{lx:.1}" y="12" width="12" height="4" fill="{colour}"/><text x="{:.1}" y="18">{name}</text>"#,
            lx + 16.0
        );
    }
    let _ = writeln!(svg, "</g>");
}

/// A self-contained page: title, the text report, the chart, and the marks as a table.
pub fn render_html(run: &ProbeRun, title: &str) -> String {
    let mut page = String::new();
    let _ = writeln!(page, "<!DOCTYPE html>");
    let _ = writeln!(
        page,
        r#"<html lang="en"><head><meta charset="utf-8"><title>{}</title>"#,
        escape(title)
    );
    page.push_str("<style>body{font-family:sans-serif;margin:24px;color:#222}pre{background:#f6f6f6;padding:12px;font-size:13px}table{border-collapse:collapse}td,th{padding:2px 12px;text-align:left;font-size:13px}</style>\n");
    page.push_str("</head><body>\n");
    let _ = writeln!(page, "<h1>{}</h1>", escape(title));
    let _ = writeln!(page, "<pre>{}</pre>", escape(&run.report.render_text()));
    page.push_str(&render_svg(run, title));
    if !run.marks.is_empty() {
        page.push_str("<h2>Events</h2>\n<table><tr><th>at</th><th>event</th></tr>\n");
        for mark in &run.marks {
            let _ = writeln!(
                page,
                "<tr><td>{}</td><td>{}</td></tr>",
                go_duration(vegeta_round(mark.at_ns)),
                escape(&mark.label)
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str("</body></html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_take_percentiles_and_count_failures() {
        let samples: Vec<Sample> = (0..100)
            .map(|i| Sample {
                seq: i,
                sent_ns: 0,
                latency_ns: (i + 1) * 1_000_000,
                bytes_in: 0,
                status: if i < 3 { 503 } else { 200 },
                error: 0,
            })
            .collect();
        let cols = columns(&samples, 1_000_000_000);
        assert_eq!(cols[0].p50_ns, 50_000_000);
        assert_eq!(cols[0].p99_ns, 99_000_000);
        assert_eq!(cols[0].max_ns, 100_000_000);
        assert_eq!(cols[0].failed, 3);
    }

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(1200.0), 2000.0);
    }
}
