//! The page's charts, drawn as SVG with `plotters`: curves on log-log
//! axes (a figure against a size) and ratio bars on a log axis.

use super::report::{num, size};
use plotters::prelude::*;
use std::error::Error;
use std::path::Path;

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// One line of a curve chart: its name and its (size, figure) points.
pub type Series = (String, Vec<(f64, f64)>);

fn span(v: impl Iterator<Item = f64>) -> (f64, f64) {
    v.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)))
}

/// Draws `series` on log-log axes into `path`; nothing if there are no
/// points.
pub fn curve(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
) -> Result<(), Box<dyn Error>> {
    let points = || series.iter().flat_map(|(_, p)| p.iter().copied());
    if points().next().is_none() {
        return Ok(());
    }
    let (x0, x1) = span(points().map(|p| p.0));
    let (y0, y1) = span(points().map(|p| p.1));
    let root = SVGBackend::new(path, (760, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d((x0 * 0.7..x1 * 1.4).log_scale(), (y0 * 0.7..y1 * 1.4).log_scale())?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|x| size(x.round() as u64))
        .y_label_formatter(&|y| num(*y))
        .draw()?;
    for (i, (name, points)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Draws one horizontal bar per `(label, ratio)` from 1 to the ratio, on
/// a log axis, into `path`; nothing if there are no bars.
pub fn ratios(path: &Path, title: &str, x_desc: &str, bars: &[(String, f64)]) -> Result<(), Box<dyn Error>> {
    if bars.is_empty() {
        return Ok(());
    }
    let (lo, hi) = span(bars.iter().map(|b| b.1).chain([1.0]));
    let n = bars.len() as i32;
    let root = SVGBackend::new(path, (860, 90 + 22 * bars.len() as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(330)
        .build_cartesian_2d((lo * 0.7..hi * 1.4).log_scale(), (0..n).into_segmented())?;
    let label = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) => bars.get(*i as usize).map_or(String::new(), |b| b.0.clone()),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_labels(bars.len())
        .y_label_formatter(&label)
        .x_label_formatter(&|x| num(*x))
        .disable_y_mesh()
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, r))| {
        let color = if *r > 1.03 { COLORS[1] } else { COLORS[2] };
        let i = i as i32;
        Rectangle::new(
            [(1.0, SegmentValue::Exact(i)), (*r, SegmentValue::Exact(i + 1))],
            color.mix(0.8).filled(),
        )
    }))?;
    root.present()?;
    Ok(())
}
