//! A small SVG writer for the bench charts: horizontal grouped bars with their values, no
//! fonts or scripts from anywhere (GitHub and any browser render it as is).

use std::fmt::Write as _;

/// One group of bars (a row of the bench: a database, a stack) and its bars (series, value).
pub(crate) struct Group {
    pub(crate) name: String,
    pub(crate) bars: Vec<(&'static str, f64)>,
}

const COLORS: [&str; 6] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1",
];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An SVG of `groups` as horizontal bars, `unit` after each value, `subtitle` under the title.
pub(crate) fn bars(title: &str, subtitle: &str, unit: &str, groups: &[Group]) -> String {
    let series: Vec<&str> = groups
        .first()
        .map(|g| g.bars.iter().map(|(s, _)| *s).collect())
        .unwrap_or_default();
    let max = groups
        .iter()
        .flat_map(|g| g.bars.iter().map(|(_, v)| *v))
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let (left, bar_h, gap, plot_w) = (190.0, 16.0, 14.0, 520.0);
    let group_h = bar_h * series.len() as f64 + gap;
    let top = 70.0;
    let height = top + group_h * groups.len() as f64 + 40.0;
    let width = left + plot_w + 130.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="12" y="24" font-size="16" font-weight="bold">{}</text>
<text x="12" y="44" fill="#555555">{}</text>
"##,
        escape(title),
        escape(subtitle)
    );
    for (i, s) in series.iter().enumerate() {
        let x = left + i as f64 * 140.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="52" width="10" height="10" fill="{}"/><text x="{}" y="61">{}</text>"#,
            COLORS[i % COLORS.len()],
            x + 14.0,
            escape(s)
        );
    }
    for (g, group) in groups.iter().enumerate() {
        let y0 = top + g as f64 * group_h;
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            left - 8.0,
            y0 + group_h / 2.0,
            escape(&group.name)
        );
        for (i, (_, value)) in group.bars.iter().enumerate() {
            let y = y0 + i as f64 * bar_h;
            let w = (value / max * plot_w).max(1.0);
            let _ = writeln!(
                svg,
                r#"<rect x="{left}" y="{y}" width="{w:.1}" height="{}" fill="{}"/><text x="{:.1}" y="{}">{} {}</text>"#,
                bar_h - 2.0,
                COLORS[i % COLORS.len()],
                left + w + 4.0,
                y + bar_h - 5.0,
                format_value(*value),
                escape(unit)
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// `12,345` for large figures, two decimals for ratios.
fn format_value(v: f64) -> String {
    if v >= 100.0 {
        let n = v.round() as u64;
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::{Group, bars};

    #[test]
    fn bars_are_scaled_labelled_and_escaped() {
        let svg = bars(
            "Requests <per> second",
            "sub",
            "req/s",
            &[
                Group {
                    name: "SQLite & co".into(),
                    bars: vec![("/health", 40_000.0), ("/auth/me", 20_000.0)],
                },
                Group {
                    name: "PostgreSQL".into(),
                    bars: vec![("/health", 10_000.0), ("/auth/me", 0.5)],
                },
            ],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("Requests &lt;per&gt; second") && svg.contains("SQLite &amp; co"));
        assert!(
            svg.contains(r#"width="520.0""#),
            "the largest bar spans the plot"
        );
        assert!(
            svg.contains(r#"width="260.0""#),
            "half the value, half the width"
        );
        assert!(svg.contains("40,000 req/s") && svg.contains("0.50 req/s"));
        assert_eq!(
            svg.matches("<rect").count(),
            1 + 2 + 4,
            "background, legend, bars"
        );
    }
}
