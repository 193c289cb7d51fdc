//! The rollout curves as an SVG written by code: two panels, a good release
//! (share of clusters running it over hours) and a bad release (share that
//! applied it, and share running the fix), each with and without waves.

use std::fmt::Write as _;

use super::sim::{Outcome, RELEASE_AT};

/// What the plot shows.
pub struct Figure<'a> {
    pub clusters: usize,
    pub seed: u64,
    pub days: u32,
    pub good_waves: &'a Outcome,
    pub good_flat: &'a Outcome,
    pub bad_waves: &'a Outcome,
    pub bad_flat: &'a Outcome,
}

const WIDTH: f64 = 980.0;
const HEIGHT: f64 = 430.0;
const PANEL_W: f64 = 400.0;
const PANEL_H: f64 = 280.0;
const TOP: f64 = 70.0;
const LEFTS: [f64; 2] = [60.0, 550.0];
const WAVES: &str = "#1f5fbf";
const FLAT: &str = "#d9730d";

struct Axes {
    left: f64,
    max_hours: f64,
}

impl Axes {
    fn x(&self, hours: f64) -> f64 {
        self.left + hours.clamp(0.0, self.max_hours) / self.max_hours * PANEL_W
    }

    fn y(share: f64) -> f64 {
        TOP + PANEL_H - share.clamp(0.0, 1.0) * PANEL_H
    }
}

/// The step curve of the share of `total` clusters that reached a point by each hour.
fn curve(out: &mut String, axes: &Axes, times: &[f64], total: usize, colour: &str, dashed: bool) {
    let mut points = vec![(axes.x(0.0), Axes::y(0.0))];
    for (i, t) in times.iter().enumerate() {
        let x = axes.x(*t);
        points.push((x, Axes::y(i as f64 / total as f64)));
        points.push((x, Axes::y((i + 1) as f64 / total as f64)));
    }
    let last = times.len() as f64 / total as f64;
    points.push((axes.x(axes.max_hours), Axes::y(last)));
    // Neighbours closer than a tenth of a pixel add nothing.
    let mut path = String::new();
    let mut previous: Option<(String, String)> = None;
    let mut skipped: Option<(String, String)> = None;
    for (x, y) in points {
        let p = (format!("{x:.1}"), format!("{y:.1}"));
        if previous.as_ref() == Some(&p) {
            continue;
        }
        if let Some(prev) = &previous
            && prev.0 == p.0
        {
            // A vertical run: keep only its two ends.
            skipped = Some(p);
            continue;
        }
        if let Some(s) = skipped.take() {
            let _ = write!(path, "{},{} ", s.0, s.1);
        }
        let _ = write!(path, "{},{} ", p.0, p.1);
        previous = Some(p);
    }
    if let Some(s) = skipped {
        let _ = write!(path, "{},{} ", s.0, s.1);
    }
    let dash = if dashed {
        r#" stroke-dasharray="6 4""#
    } else {
        ""
    };
    let _ = writeln!(
        out,
        r#"<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{}"/>"#,
        path.trim_end()
    );
}

fn frame(out: &mut String, axes: &Axes, title: &str) {
    let (l, r) = (axes.left, axes.left + PANEL_W);
    let (t, b) = (TOP, TOP + PANEL_H);
    let _ = writeln!(
        out,
        r#"<text x="{l}" y="{}" font-size="15" font-weight="bold">{title}</text>"#,
        t - 14.0
    );
    for share in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let y = Axes::y(share);
        let _ = writeln!(
            out,
            r##"<line x1="{l}" y1="{y}" x2="{r}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" font-size="11" text-anchor="end">{:.0} %</text>"##,
            l - 6.0,
            y + 4.0,
            share * 100.0
        );
    }
    let step = if axes.max_hours > 24.0 * 8.0 {
        48.0
    } else {
        24.0
    };
    let mut h = 0.0;
    while h <= axes.max_hours + 0.1 {
        let x = axes.x(h);
        let _ = writeln!(
            out,
            r##"<line x1="{x}" y1="{t}" x2="{x}" y2="{b}" stroke="#eee"/><text x="{x}" y="{}" font-size="11" text-anchor="middle">{h:.0}</text>"##,
            b + 16.0
        );
        h += step;
    }
    let _ = writeln!(
        out,
        r##"<rect x="{l}" y="{t}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#555"/><text x="{}" y="{}" font-size="12" text-anchor="middle">hours after the release was published</text>"##,
        l + PANEL_W / 2.0,
        b + 34.0
    );
}

fn marker(out: &mut String, axes: &Axes, at: Option<f64>, label: &str, colour: &str, row: f64) {
    if let Some(h) = at {
        let x = axes.x(h);
        let _ = writeln!(
            out,
            r#"<line x1="{x}" y1="{TOP}" x2="{x}" y2="{}" stroke="{colour}" stroke-dasharray="2 3"/><text x="{}" y="{}" font-size="10" fill="{colour}">{label} {h:.0} h</text>"#,
            TOP + PANEL_H,
            x + 3.0,
            TOP + 12.0 + row * 12.0
        );
    }
}

fn legend(out: &mut String, x: f64, y: f64, entries: &[(&str, &str, bool)]) {
    for (i, (label, colour, dashed)) in entries.iter().enumerate() {
        let yy = y + i as f64 * 16.0;
        let dash = if *dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r#"<line x1="{x}" y1="{yy}" x2="{}" y2="{yy}" stroke="{colour}" stroke-width="2"{dash}/><text x="{}" y="{}" font-size="11">{label}</text>"#,
            x + 24.0,
            x + 30.0,
            yy + 4.0
        );
    }
}

/// The whole SVG document.
pub fn svg(f: &Figure<'_>) -> String {
    // The simulated span after the release, cut to a day after the last thing happened.
    let span = (f64::from(f.days) * 24.0 - RELEASE_AT as f64 / 3600.0).max(1.0);
    let last = [f.good_waves, f.good_flat, f.bad_waves, f.bad_flat]
        .iter()
        .flat_map(|o| {
            [o.updated.last(), o.bad_started.last()]
                .into_iter()
                .flatten()
                .copied()
                .chain(o.fix_at)
        })
        .fold(0.0, f64::max);
    let max_hours = (((last + 24.0) / 24.0).ceil() * 24.0).min(span);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/><text x="{}" y="24" font-size="13" text-anchor="middle">cargo xtask fleet-sim --clusters {} --seed {} --days {}</text>"#,
        WIDTH / 2.0,
        f.clusters,
        f.seed,
        f.days
    );
    let good = Axes {
        left: LEFTS[0],
        max_hours,
    };
    frame(&mut out, &good, "A good release: clusters running it");
    curve(
        &mut out,
        &good,
        &f.good_waves.updated,
        f.clusters,
        WAVES,
        false,
    );
    curve(
        &mut out,
        &good,
        &f.good_flat.updated,
        f.clusters,
        FLAT,
        false,
    );
    legend(
        &mut out,
        good.left + PANEL_W - 130.0,
        TOP + PANEL_H - 40.0,
        &[("with waves", WAVES, false), ("without waves", FLAT, false)],
    );

    let bad = Axes {
        left: LEFTS[1],
        max_hours,
    };
    frame(
        &mut out,
        &bad,
        "A bad release: who applied it, then the fix",
    );
    curve(
        &mut out,
        &bad,
        &f.bad_waves.bad_started,
        f.clusters,
        WAVES,
        true,
    );
    curve(
        &mut out,
        &bad,
        &f.bad_flat.bad_started,
        f.clusters,
        FLAT,
        true,
    );
    curve(
        &mut out,
        &bad,
        &f.bad_waves.updated,
        f.clusters,
        WAVES,
        false,
    );
    curve(&mut out, &bad, &f.bad_flat.updated, f.clusters, FLAT, false);
    marker(
        &mut out,
        &bad,
        f.bad_waves.paused_at,
        "paused (waves)",
        WAVES,
        0.0,
    );
    marker(
        &mut out,
        &bad,
        f.bad_flat.paused_at,
        "paused (no waves)",
        FLAT,
        1.0,
    );
    legend(
        &mut out,
        bad.left + PANEL_W - 175.0,
        TOP + PANEL_H - 72.0,
        &[
            ("applied the bad one, waves", WAVES, true),
            ("applied it, no waves", FLAT, true),
            ("runs the fix, waves", WAVES, false),
            ("runs the fix, no waves", FLAT, false),
        ],
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::{fleet, sim};
    use super::*;

    #[test]
    fn the_svg_has_six_curves_inside_their_panels() {
        let fleet = fleet::generate(80, 2);
        let run = |bad_release, waves| {
            sim::run(
                &fleet,
                sim::Scenario {
                    bad_release,
                    waves,
                    days: 5,
                    exhaustive: false,
                },
            )
            .unwrap()
        };
        let (gw, gf, bw, bf) = (
            run(false, true),
            run(false, false),
            run(true, true),
            run(true, false),
        );
        let svg = svg(&Figure {
            clusters: 80,
            seed: 2,
            days: 5,
            good_waves: &gw,
            good_flat: &gf,
            bad_waves: &bw,
            bad_flat: &bf,
        });
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>\n"));
        let curves: Vec<&str> = svg
            .lines()
            .filter_map(|l| l.split("points=\"").nth(1))
            .collect();
        assert_eq!(curves.len(), 6);
        for points in curves {
            for p in points.trim_end_matches("\"/>").split(' ') {
                let (x, y) = p.split_once(',').unwrap();
                let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                assert!((LEFTS[0]..=LEFTS[1] + PANEL_W).contains(&x), "{p}");
                assert!((TOP..=TOP + PANEL_H).contains(&y), "{p}");
            }
        }
    }
}
