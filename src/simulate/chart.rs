//! The SVG chart: metric values on top, replicas below, on one time axis.

use plotters::prelude::*;

use super::model::{Outcome, Simulation};

/// Why the chart could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing the chart: {0}")]
pub struct ChartError(String);

fn failed(error: impl std::fmt::Display) -> ChartError {
    ChartError(error.to_string())
}

const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// Draws the chart and returns the SVG text.
pub fn draw(simulation: &Simulation, outcome: &Outcome, title: &str) -> Result<String, ChartError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let root = root.titled(title, ("sans-serif", 20)).map_err(failed)?;
        let (top, bottom) = root.split_vertically(320);
        let end = outcome
            .samples
            .last()
            .map(|sample| sample.time)
            .unwrap_or(1)
            .max(1);
        let metric_label = if simulation.consumption.is_some() {
            "queue depth"
        } else {
            "metric"
        };
        let highest = outcome
            .samples
            .iter()
            .flat_map(|sample| sample.values.iter().flatten())
            .fold(1.0f64, |highest, value| highest.max(*value));
        let mut metrics = ChartBuilder::on(&top)
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0u64..end, 0f64..highest * 1.1)
            .map_err(failed)?;
        metrics
            .configure_mesh()
            .x_desc("seconds")
            .y_desc(metric_label)
            .y_label_formatter(&|value| format!("{value:.0}"))
            .draw()
            .map_err(failed)?;
        for (index, trigger) in simulation.triggers.iter().enumerate() {
            let color = COLORS[index % COLORS.len()];
            // Break the line where the scaler fails, and mark those seconds below the axis.
            let mut segment: Vec<(u64, f64)> = Vec::new();
            let mut segments = Vec::new();
            let mut failures = Vec::new();
            for sample in &outcome.samples {
                match sample.values[index] {
                    Some(value) => segment.push((sample.time, value)),
                    None => {
                        failures.push(sample.time);
                        if !segment.is_empty() {
                            segments.push(std::mem::take(&mut segment));
                        }
                    }
                }
            }
            if !segment.is_empty() {
                segments.push(segment);
            }
            for (number, points) in segments.into_iter().enumerate() {
                let series = metrics
                    .draw_series(LineSeries::new(points, color.stroke_width(2)))
                    .map_err(failed)?;
                if number == 0 {
                    series.label(trigger.name.clone()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
                }
            }
            if !failures.is_empty() {
                metrics
                    .draw_series(
                        failures
                            .into_iter()
                            .map(|time| Circle::new((time, 0.0), 2, RED.filled())),
                    )
                    .map_err(failed)?
                    .label(format!("{} failing", trigger.name))
                    .legend(|(x, y)| Circle::new((x + 9, y), 3, RED.filled()));
            }
        }
        metrics
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(failed)?;

        let most = outcome
            .samples
            .iter()
            .map(|sample| sample.replicas)
            .max()
            .unwrap_or(1)
            .max(1);
        let mut replicas = ChartBuilder::on(&bottom)
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0u64..end, 0u32..most + 1)
            .map_err(failed)?;
        replicas
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("replicas")
            .draw()
            .map_err(failed)?;
        let mut steps: Vec<(u64, u32)> = Vec::new();
        for sample in &outcome.samples {
            if let Some((_, previous)) = steps.last()
                && *previous != sample.replicas
            {
                steps.push((sample.time, *previous));
            }
            steps.push((sample.time, sample.replicas));
        }
        replicas
            .draw_series(LineSeries::new(steps, BLACK.stroke_width(2)))
            .map_err(failed)?
            .label("replicas")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2)));
        if simulation.consumption.is_some() {
            let ready: Vec<(u64, u32)> = outcome
                .samples
                .iter()
                .map(|sample| (sample.time, sample.ready))
                .collect();
            let green = COLORS[2];
            replicas
                .draw_series(LineSeries::new(ready, green.stroke_width(1)))
                .map_err(failed)?
                .label("ready replicas")
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], green.stroke_width(1))
                });
        }
        replicas
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(failed)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}
