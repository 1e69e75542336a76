//! Charts as data, and one renderer that draws them to SVG and PNG with
//! plotters. Figures (see `figures.rs`) build a [`Chart`]; drawing never
//! looks at the run.

use crate::summary::format_number;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::sync::Once;

pub const WIDTH: u32 = 800;
pub const HEIGHT: u32 = 400;

/// The font of every plot, shipped with the binary so that a machine without
/// fonts renders the same PNG.
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// Lines (or points) against a numeric x axis, or against named categories.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Draw y on a log10 axis (values <= 0 are left out).
    pub log_y: bool,
    /// Draw x on a log10 axis (values <= 0 are left out).
    pub log_x: bool,
    pub series: Vec<Series>,
    /// Horizontal reference lines: (label, y).
    pub hlines: Vec<(String, f64)>,
    /// A shaded horizontal band: (label, low, high).
    pub band: Option<(String, f64, f64)>,
    /// Vertical markers at x: (label, x).
    pub markers: Vec<(String, f64)>,
    /// Names of x = 0, 1, 2, ... for a categorical axis (layers in depth order).
    pub categories: Option<Vec<String>>,
    /// Draw series as grouped bars over the categories instead of lines.
    pub bars: bool,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(23, 190, 207),
];
const MARKER: RGBColor = RGBColor(214, 39, 40);

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in and known to parse; a failure would only
        // drop text from PNGs, which the tests would see.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// A value as drawn on an axis: log10 on a log axis, where only positive
/// values exist; non-finite values are never drawn.
fn on_axis(log: bool, v: f64) -> Option<f64> {
    match log {
        true if v > 0.0 && v.is_finite() => Some(v.log10()),
        true => None,
        false if v.is_finite() => Some(v),
        false => None,
    }
}

impl Chart {
    fn y(&self, v: f64) -> Option<f64> {
        on_axis(self.log_y, v)
    }

    fn x(&self, v: f64) -> Option<f64> {
        on_axis(self.log_x, v)
    }

    fn bounds(&self) -> (f64, f64, f64, f64) {
        let mut xs: Vec<f64> = self.series.iter().flat_map(|s| s.points.iter().filter_map(|p| self.x(p.0))).collect();
        xs.extend(self.markers.iter().filter_map(|m| self.x(m.1)));
        let mut ys: Vec<f64> = self.series.iter().flat_map(|s| s.points.iter().filter_map(|p| self.y(p.1))).collect();
        ys.extend(self.hlines.iter().filter_map(|h| self.y(h.1)));
        if let Some((_, lo, hi)) = &self.band {
            ys.extend([self.y(*lo), self.y(*hi)].into_iter().flatten());
        }
        let (mut x0, mut x1) = min_max(&xs).unwrap_or((0.0, 1.0));
        if let Some(names) = &self.categories {
            (x0, x1) = (-0.5, names.len() as f64 - 0.5);
        }
        let (mut y0, mut y1) = min_max(&ys).unwrap_or((0.0, 1.0));
        if self.bars {
            y0 = y0.min(0.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        let pad = if y1 > y0 { (y1 - y0) * 0.05 } else { y0.abs().max(1.0) * 0.1 };
        if !self.bars {
            y0 -= pad;
        }
        y1 += pad;
        (x0, x1, y0, y1)
    }

    pub fn to_svg(&self) -> Result<String, String> {
        register_font();
        let mut text = String::new();
        {
            let root = SVGBackend::with_string(&mut text, (WIDTH, HEIGHT)).into_drawing_area();
            self.draw(&root).map_err(|e| format!("drawing {:?}: {e}", self.title))?;
        }
        Ok(compact_svg(&text))
    }

    pub fn to_png(&self) -> Result<Vec<u8>, String> {
        register_font();
        let mut pixels = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)).into_drawing_area();
            self.draw(&root).map_err(|e| format!("drawing {:?}: {e}", self.title))?;
        }
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(&pixels).map_err(|e| e.to_string())?;
        writer.finish().map_err(|e| e.to_string())?;
        Ok(out)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        let (x0, x1, y0, y1) = self.bounds();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FAMILY, 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(72)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        let log = self.log_y;
        let y_format = move |v: &f64| if log { two_digits(10f64.powf(*v)) } else { format_number(*v) };
        let categories = self.categories.clone();
        let log_x = self.log_x;
        let x_format = move |v: &f64| match &categories {
            Some(names) => {
                let i = v.round();
                if (v - i).abs() < 1e-6 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            }
            None if log_x => two_digits(10f64.powf(*v)),
            None => format_number(*v),
        };
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style((FAMILY, 12))
            .axis_desc_style((FAMILY, 13))
            .y_label_formatter(&y_format)
            .x_label_formatter(&x_format)
            // The major grid alone: the minor lines were half of every SVG's
            // bytes (an audit writes tens of thousands of them) and add
            // little to a curve's reading.
            .max_light_lines(0);
        if let Some(names) = &self.categories {
            mesh.x_labels(names.len().min(16));
        }
        mesh.draw()?;
        if let Some((label, lo, hi)) = &self.band {
            if let (Some(lo), Some(hi)) = (self.y(*lo), self.y(*hi)) {
                let color = PALETTE[2].mix(0.12);
                chart
                    .draw_series(std::iter::once(Rectangle::new([(x0, lo), (x1, hi)], color.filled())))?
                    .label(label.as_str())
                    .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], color.filled()));
            }
        }
        let count = self.series.len().max(1) as f64;
        for (i, series) in self.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let points: Vec<(f64, f64)> = series.points.iter().filter_map(|&(x, y)| Some((self.x(x)?, self.y(y)?))).collect();
            let drawn = if self.bars {
                let width = 0.8 / count;
                let base = if y0 > 0.0 { y0 } else { 0.0 };
                chart.draw_series(points.iter().map(|&(x, y)| {
                    let left = x - 0.4 + width * i as f64;
                    Rectangle::new([(left, base), (left + width * 0.9, y)], color.filled())
                }))?
            } else if points.len() == 1 || self.categories.is_some() {
                chart.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?;
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?
            } else {
                chart.draw_series(LineSeries::new(points, color.stroke_width(2)))?
            };
            drawn.label(series.name.as_str()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        }
        for (label, value) in &self.hlines {
            if let Some(y) = self.y(*value) {
                let color = RGBColor(60, 60, 60);
                chart
                    .draw_series(DashedLineSeries::new(vec![(x0, y), (x1, y)], 6, 4, color.stroke_width(1)))?
                    .label(label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
            }
        }
        for (i, (label, x)) in self.markers.iter().filter_map(|(l, x)| Some((l, self.x(*x)?))).enumerate() {
            chart.draw_series(std::iter::once(PathElement::new(vec![(x, y0), (x, y1)], MARKER.stroke_width(1))))?;
            // Stagger labels so that close markers stay readable.
            let y = y1 - (y1 - y0) * (0.06 + 0.07 * (i % 3) as f64);
            let style = (FAMILY, 12).into_font().color(&MARKER);
            // Labels near the right edge go to the left of their line.
            let (text, style) = if x > x0 + 0.75 * (x1 - x0) {
                (format!("{label} "), style.pos(Pos::new(HPos::Right, VPos::Top)))
            } else {
                (format!(" {label}"), style)
            };
            chart.draw_series(std::iter::once(Text::new(text, (x, y), style)))?;
        }
        chart
            .configure_series_labels()
            .label_font((FAMILY, 12))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
        root.present()?;
        Ok(())
    }
}

/// A tick label with two significant digits: log axes put ticks at values
/// like 0.50119, which read better as 0.5.
fn two_digits(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format_number(v);
    }
    let magnitude = v.abs().log10().floor();
    let scale = 10f64.powf(magnitude - 1.0);
    let rounded = (v / scale).round() * scale;
    if (1e-3..1e5).contains(&rounded.abs()) {
        format_number(rounded)
    } else {
        format!("{rounded:.1e}").replace(".0e", "e")
    }
}

fn min_max(values: &[f64]) -> Option<(f64, f64)> {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo.is_finite() && hi.is_finite()).then_some((lo, hi))
}

/// Keeps the first, lowest, highest and last point of each of `columns`
/// equal slices of x: a long series keeps its shape (spikes included) and its
/// drawing stays small.
pub fn decimate(points: &[(f64, f64)], columns: usize) -> Vec<(f64, f64)> {
    if points.len() <= columns * 4 || columns == 0 {
        return points.to_vec();
    }
    let (x0, x1) = (points[0].0, points[points.len() - 1].0);
    let width = (x1 - x0) / columns as f64;
    let mut out = Vec::with_capacity(columns * 4);
    let mut start = 0;
    while start < points.len() {
        let column = (((points[start].0 - x0) / width).floor() as usize).min(columns - 1);
        let end_x = x0 + width * (column + 1) as f64;
        let mut end = start + 1;
        while end < points.len() && (points[end].0 < end_x || column == columns - 1) {
            end += 1;
        }
        let slice = &points[start..end];
        let finite = slice.iter().filter(|p| p.1.is_finite());
        let lo = finite.clone().min_by(|a, b| a.1.total_cmp(&b.1));
        let hi = finite.max_by(|a, b| a.1.total_cmp(&b.1));
        let mut keep: Vec<(f64, f64)> = [Some(slice[0]), lo.copied(), hi.copied(), Some(slice[slice.len() - 1])].into_iter().flatten().collect();
        keep.sort_by(|a, b| a.0.total_cmp(&b.0));
        keep.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        out.extend(keep);
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimation_keeps_extremes_and_bounds_size() {
        let mut points: Vec<(f64, f64)> = (0..100_000).map(|i| (i as f64, (i % 7) as f64)).collect();
        points[54_321].1 = 1000.0;
        let kept = decimate(&points, 200);
        assert!(kept.len() <= 800, "{}", kept.len());
        assert!(kept.contains(&(54_321.0, 1000.0)));
        assert_eq!(kept.first(), points.first());
        assert_eq!(kept.last(), points.last());
        assert!(kept.windows(2).all(|w| w[0].0 <= w[1].0));
        let short = vec![(0.0, 1.0), (1.0, 2.0)];
        assert_eq!(decimate(&short, 200), short);
    }

    #[test]
    fn renders_svg_and_png_the_same_every_time() {
        let chart = Chart {
            title: "loss <b>".into(),
            x_label: "step".into(),
            y_label: "loss".into(),
            log_y: true,
            series: vec![Series { name: "a</text>".into(), points: (0..50).map(|i| (i as f64, 3.0 / (1.0 + i as f64))).collect() }],
            hlines: vec![("ln C".into(), 2.3)],
            band: Some(("band".into(), 0.1, 1.0)),
            markers: vec![("spike".into(), 10.0)],
            ..Default::default()
        };
        let svg = chart.to_svg().unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("loss &lt;b&gt;") && !svg.contains("a</text>"));
        let png = chart.to_png().unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert_eq!(chart.to_png().unwrap(), png);
        assert_eq!(chart.to_svg().unwrap(), svg);
    }
}

/// plotters' SVG, smaller and drawn the same: the default opacity it writes
/// on every element goes, and its tick marks (one two-point polyline each,
/// most of a chart's elements) become one path per style.
fn compact_svg(text: &str) -> String {
    let text = text.replace(" opacity=\"1\"", "");
    let mut out = String::with_capacity(text.len());
    // Tick marks by their style attributes, in the order first seen.
    let mut ticks: Vec<(String, String)> = Vec::new();
    let mut placed: Vec<usize> = Vec::new();
    for line in text.lines() {
        let segment = line
            .strip_prefix("<polyline ")
            .and_then(|rest| rest.strip_suffix(" \"/>"))
            .and_then(|rest| rest.split_once(" points=\""))
            .and_then(|(style, points)| {
                let mut pairs = points.split(' ');
                let (a, b) = (pairs.next()?, pairs.next()?);
                pairs.next().is_none().then(|| (style.to_string(), format!("M{}L{}", a.replace(',', " "), b.replace(',', " "))))
            });
        match segment {
            Some((style, path)) => match ticks.iter_mut().find(|(s, _)| *s == style) {
                Some((_, d)) => d.push_str(&path),
                None => {
                    // The path takes the place of the first mark of its style.
                    placed.push(out.len());
                    ticks.push((style, path));
                }
            },
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for ((style, d), at) in ticks.into_iter().zip(placed).rev() {
        out.insert_str(at, &format!("<path {style} d=\"{d}\"/>\n"));
    }
    out
}

#[cfg(test)]
mod compact_tests {
    #[test]
    fn tick_marks_become_one_path_in_place() {
        let svg = "<svg>\n<rect opacity=\"1\" x=\"0\"/>\n<polyline fill=\"none\" stroke=\"#000000\" stroke-width=\"1\" points=\"78,337 83,337 \"/>\n<text>a</text>\n<polyline fill=\"none\" stroke=\"#000000\" stroke-width=\"1\" points=\"78,269 83,269 \"/>\n<polyline fill=\"none\" stroke=\"#1F77B4\" stroke-width=\"2\" points=\"1,2 3,4 5,6 \"/>\n</svg>\n";
        let compact = super::compact_svg(svg);
        assert_eq!(
            compact,
            "<svg>\n<rect x=\"0\"/>\n<path fill=\"none\" stroke=\"#000000\" stroke-width=\"1\" d=\"M78 337L83 337M78 269L83 269\"/>\n<text>a</text>\n<polyline fill=\"none\" stroke=\"#1F77B4\" stroke-width=\"2\" points=\"1,2 3,4 5,6 \"/>\n</svg>\n"
        );
    }
}
