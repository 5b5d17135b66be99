//! The SVG chart: metric values (with targets and activation thresholds) on top, replicas
//! below as a step line, scale events marked with their reason on hover. One implementation
//! for `ebb simulate` ([`draw`]) and the live dashboard ([`render`] on recorded history), so
//! what a user tuned offline looks the same live.

use std::fmt::Write as _;

use plotters::prelude::*;

use super::model::{Outcome, Simulation};
use crate::scaling::FORMULA_NAME;

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

/// One trigger's line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricLine {
    /// The trigger's name (legends of its thresholds and failures).
    pub name: String,
    /// The legend text of the line itself.
    pub label: String,
    /// `(second, value)`; `None` where the scaler failed (the line breaks there).
    pub points: Vec<(u64, Option<f64>)>,
    /// The target, drawn dashed.
    pub target: Option<f64>,
    /// The activation threshold, drawn dotted (only when above zero).
    pub activation: Option<f64>,
}

/// A change of the replica count, marked on the replica chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleMark {
    /// Second of the change.
    pub time: u64,
    /// Replicas after it.
    pub replicas: u32,
    /// The engine's reason, shown on hover.
    pub reason: String,
}

/// Everything one chart shows, on one time axis in whole seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChartData {
    /// Seconds shown: the axis runs from 0 to this.
    pub span: u64,
    /// Caption of the time axis.
    pub time_caption: String,
    /// Caption of the metric axis.
    pub metric_caption: String,
    /// One line per trigger.
    pub metrics: Vec<MetricLine>,
    /// Desired replicas as `(second, count)` steps.
    pub replicas: Vec<(u64, u32)>,
    /// A second replica line (ready or current replicas) with its legend text.
    pub second_replicas: Option<(String, Vec<(u64, u32)>)>,
    /// Scale changes.
    pub marks: Vec<ScaleMark>,
}

/// Draws `ebb simulate`'s chart and returns the SVG text.
pub fn draw(simulation: &Simulation, outcome: &Outcome, title: &str) -> Result<String, ChartError> {
    let samples = &outcome.samples;
    let modifiers = simulation.spec.modifiers.as_ref();
    let data = ChartData {
        span: samples.last().map(|sample| sample.time).unwrap_or(1).max(1),
        time_caption: "seconds".to_owned(),
        metric_caption: if simulation.consumption.is_some() {
            "queue depth"
        } else {
            "metric"
        }
        .to_owned(),
        metrics: simulation
            .triggers
            .iter()
            .enumerate()
            .map(|(index, trigger)| MetricLine {
                name: trigger.name.clone(),
                label: trigger.name.clone(),
                points: samples
                    .iter()
                    .map(|sample| (sample.time, sample.values[index]))
                    .collect(),
                // With a formula the triggers' own targets play no part.
                target: Some(trigger.target).filter(|_| modifiers.is_none()),
                activation: Some(trigger.activation).filter(|_| modifiers.is_none()),
            })
            .chain(modifiers.map(|modifiers| {
                MetricLine {
                    name: FORMULA_NAME.to_owned(),
                    label: modifiers
                        .formula
                        .as_ref()
                        .map_or(FORMULA_NAME, |formula| formula.source())
                        .to_owned(),
                    points: samples
                        .iter()
                        .map(|sample| (sample.time, sample.composite))
                        .collect(),
                    target: Some(modifiers.target),
                    activation: Some(modifiers.activation_target),
                }
            }))
            .collect(),
        replicas: samples
            .iter()
            .map(|sample| (sample.time, sample.replicas))
            .collect(),
        second_replicas: simulation.consumption.is_some().then(|| {
            (
                "ready replicas".to_owned(),
                samples
                    .iter()
                    .map(|sample| (sample.time, sample.ready))
                    .collect(),
            )
        }),
        marks: outcome
            .changes()
            .map(|poll| ScaleMark {
                time: poll.time,
                replicas: poll.to,
                reason: format!("{} → {}: {}", poll.from, poll.to, poll.reason),
            })
            .collect(),
    };
    render(&data, title)
}

/// Steps for a count: a horizontal segment until each change, then the vertical jump.
fn steps(points: &[(u64, u32)]) -> Vec<(u64, u32)> {
    let mut out: Vec<(u64, u32)> = Vec::new();
    for &(time, count) in points {
        if let Some(&(_, previous)) = out.last()
            && previous != count
        {
            out.push((time, previous));
        }
        out.push((time, count));
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Draws `data` and returns the SVG text.
pub fn render(data: &ChartData, title: &str) -> Result<String, ChartError> {
    let mut svg = String::new();
    let mut marks = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let root = root.titled(title, ("sans-serif", 20)).map_err(failed)?;
        let (top, bottom) = root.split_vertically(320);
        let end = data.span.max(1);
        let highest = data
            .metrics
            .iter()
            .flat_map(|line| {
                line.points
                    .iter()
                    .filter_map(|point| point.1)
                    .chain(line.target)
                    .chain(line.activation)
            })
            .fold(1.0f64, f64::max);
        let mut metrics = ChartBuilder::on(&top)
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0u64..end, 0f64..highest * 1.1)
            .map_err(failed)?;
        metrics
            .configure_mesh()
            .x_desc(data.time_caption.as_str())
            .y_desc(data.metric_caption.as_str())
            .y_label_formatter(&|value| format!("{value:.0}"))
            .draw()
            .map_err(failed)?;
        for (index, line) in data.metrics.iter().enumerate() {
            let color = COLORS[index % COLORS.len()];
            // Break the line where the scaler fails, and mark those seconds below the axis.
            let mut segment: Vec<(u64, f64)> = Vec::new();
            let mut segments = Vec::new();
            let mut failures = Vec::new();
            for &(time, value) in &line.points {
                match value {
                    Some(value) => segment.push((time, value)),
                    None => {
                        failures.push(time);
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
                    series.label(line.label.clone()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
                }
            }
            // Targets dashed, activation thresholds dotted: the levels the values are read against.
            for (threshold, what, dash) in [
                (line.target, "target", 8),
                (line.activation, "activation", 2),
            ] {
                let Some(threshold) = threshold.filter(|value| *value > 0.0) else {
                    continue;
                };
                let style = color.mix(0.7).stroke_width(1);
                metrics
                    .draw_series(DashedLineSeries::new(
                        [(0, threshold), (end, threshold)],
                        dash,
                        4,
                        style,
                    ))
                    .map_err(failed)?
                    .label(format!("{} {what} {threshold}", line.name))
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
            }
            if !failures.is_empty() {
                metrics
                    .draw_series(
                        failures
                            .into_iter()
                            .map(|time| Circle::new((time, 0.0), 2, RED.filled())),
                    )
                    .map_err(failed)?
                    .label(format!("{} failing", line.name))
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

        let most = data
            .replicas
            .iter()
            .chain(data.second_replicas.iter().flat_map(|(_, points)| points))
            .map(|point| point.1)
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
            .x_desc(data.time_caption.as_str())
            .y_desc("replicas")
            .draw()
            .map_err(failed)?;
        replicas
            .draw_series(LineSeries::new(
                steps(&data.replicas),
                BLACK.stroke_width(2),
            ))
            .map_err(failed)?
            .label("replicas")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2)));
        if let Some((label, points)) = &data.second_replicas {
            let green = COLORS[2];
            replicas
                .draw_series(LineSeries::new(steps(points), green.stroke_width(1)))
                .map_err(failed)?
                .label(label.clone())
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
        // Plotters draws no hover text, so the marks are plain SVG with a <title> each.
        for mark in &data.marks {
            let (x, y) = replicas.backend_coord(&(mark.time.min(end), mark.replicas));
            let _ = write!(
                marks,
                r##"<circle class="scale-event" cx="{x}" cy="{y}" r="5" fill="#d62728" stroke="white"><title>{}</title></circle>"##,
                escape(&mark.reason)
            );
        }
        root.present().map_err(failed)?;
    }
    if let Some(end) = svg.rfind("</svg>") {
        svg.insert_str(end, &marks);
    }
    Ok(svg)
}
