//! A latency-percentile chart (SVG), so a reader sees a run at a glance.

use std::path::Path;

use plotters::prelude::*;

/// Draws one line per named curve of (percentile, ms) points.
pub fn write(path: &Path, title: &str, curves: &[(&str, Vec<(f64, f64)>)]) -> anyhow::Result<()> {
    let max_ms = curves.iter().flat_map(|(_, c)| c.iter().map(|p| p.1)).fold(1.0_f64, f64::max) * 1.1;
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    // Percentiles sit on an index axis so p99 and p99.9 do not crowd p50.
    let labels: Vec<String> =
        curves.first().map(|(_, c)| c.iter().map(|p| format!("p{}", p.0)).collect()).unwrap_or_default();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0usize..labels.len().saturating_sub(1), 0.0..max_ms)?;
    chart
        .configure_mesh()
        .x_labels(labels.len())
        .x_label_formatter(&|i| labels.get(*i).cloned().unwrap_or_default())
        .y_desc("latency (ms)")
        .draw()?;
    let colours = [BLUE, RED, GREEN, MAGENTA];
    for (i, (name, points)) in curves.iter().enumerate() {
        let colour = colours[i % colours.len()];
        chart
            .draw_series(LineSeries::new(points.iter().enumerate().map(|(x, p)| (x, p.1)), colour.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart.draw_series(points.iter().enumerate().map(|(x, p)| Circle::new((x, p.1), 3, colour.filled())))?;
    }
    chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw()?;
    root.present()?;
    Ok(())
}
