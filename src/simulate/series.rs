//! The metric series: a CSV of time (seconds) and one column per trigger.

use std::time::Duration;

/// A parsed series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Column names after the time column: trigger names.
    pub columns: Vec<String>,
    /// Rows in time order.
    pub rows: Vec<Row>,
}

/// One row: from `time` on, until the next row, the values hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Seconds from the start.
    pub time: f64,
    /// One value per column; `None` (an empty cell) means the scaler fails.
    pub values: Vec<Option<f64>>,
}

/// Why a series could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SeriesError {
    /// The CSV itself is malformed.
    #[error("line {line}: {message}")]
    Csv {
        /// Line in the file.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A cell is not a number.
    #[error("line {line}, column {column:?}: {message}")]
    Cell {
        /// Line in the file.
        line: u64,
        /// Column name.
        column: String,
        /// What is wrong.
        message: String,
    },
    /// The header or the row order is wrong.
    #[error("{0}")]
    Shape(String),
}

fn parse_time(text: &str) -> Result<f64, String> {
    if let Ok(seconds) = text.parse::<f64>() {
        if seconds.is_finite() && seconds >= 0.0 {
            return Ok(seconds);
        }
        return Err(format!(
            "time must be a number of seconds >= 0, got {text:?}"
        ));
    }
    humantime::parse_duration(text)
        .map(|duration: Duration| duration.as_secs_f64())
        .map_err(|_| {
            format!("time must be seconds (e.g. 90) or a duration (e.g. 1m30s), got {text:?}")
        })
}

impl Series {
    /// Parses CSV text: a header `time,<trigger>,...`, then rows. Lines starting with `#` are
    /// comments; an empty cell means the trigger's scaler fails at that time.
    pub fn parse(text: &str) -> Result<Series, SeriesError> {
        let mut reader = csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let csv_error = |error: csv::Error| SeriesError::Csv {
            line: error
                .position()
                .map(|position| position.line())
                .unwrap_or(0),
            message: error.to_string(),
        };
        let header = reader.headers().map_err(csv_error)?.clone();
        if header.len() < 2 {
            return Err(SeriesError::Shape(
                "the header needs a time column and at least one trigger column, e.g. `time,orders`"
                    .to_owned(),
            ));
        }
        let columns: Vec<String> = header.iter().skip(1).map(str::to_owned).collect();
        let mut rows: Vec<Row> = Vec::new();
        for record in reader.records() {
            let record = record.map_err(csv_error)?;
            let line = record
                .position()
                .map(|position| position.line())
                .unwrap_or(0);
            let cell_error = |column: &str, message: String| SeriesError::Cell {
                line,
                column: column.to_owned(),
                message,
            };
            let time_text = record.get(0).unwrap_or_default();
            let time = parse_time(time_text).map_err(|message| cell_error(&header[0], message))?;
            if let Some(previous) = rows.last()
                && time < previous.time
            {
                return Err(cell_error(
                    &header[0],
                    format!("time {time} is before the previous row's {}", previous.time),
                ));
            }
            let mut values = Vec::with_capacity(columns.len());
            for (index, column) in columns.iter().enumerate() {
                let cell = record.get(index + 1).unwrap_or_default();
                if cell.is_empty() {
                    values.push(None);
                    continue;
                }
                let value = cell
                    .parse::<f64>()
                    .ok()
                    .filter(|value| value.is_finite() && *value >= 0.0)
                    .ok_or_else(|| {
                        cell_error(
                            column,
                            format!(
                                "expected a number >= 0 or an empty cell (error), got {cell:?}"
                            ),
                        )
                    })?;
                values.push(Some(value));
            }
            rows.push(Row { time, values });
        }
        if rows.is_empty() {
            return Err(SeriesError::Shape("the series has no rows".to_owned()));
        }
        Ok(Series { columns, rows })
    }

    /// The row in force at `time`: the last one starting at or before it (the first row before
    /// the series starts).
    pub fn row_at(&self, time: f64) -> &Row {
        let index = self.rows.partition_point(|row| row.time <= time);
        &self.rows[index.saturating_sub(1)]
    }

    /// The time of the last row.
    pub fn end(&self) -> f64 {
        self.rows.last().map(|row| row.time).unwrap_or(0.0)
    }

    /// The column of a trigger.
    pub fn column(&self, trigger: &str) -> Option<usize> {
        self.columns.iter().position(|column| column == trigger)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_comments_errors_and_durations() {
        let series = Series::parse("# a comment\ntime,orders\n0,10\n30,\n1m,5.5\n").unwrap();
        assert_eq!(series.columns, vec!["orders"]);
        assert_eq!(series.rows.len(), 3);
        assert_eq!(series.rows[1].values, vec![None]);
        assert_eq!(series.rows[2].time, 60.0);
        assert_eq!(series.row_at(45.0).time, 30.0);
        assert_eq!(series.row_at(-1.0).time, 0.0);
        assert_eq!(series.row_at(1000.0).values, vec![Some(5.5)]);
    }

    #[test]
    fn bad_cells_name_line_and_column() {
        let error = Series::parse("time,orders\n0,10\n5,many\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("line 3") && error.contains("orders"),
            "{error}"
        );
        let error = Series::parse("time,orders\n10,1\n5,1\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("before the previous row"), "{error}");
        let error = Series::parse("time\n0\n").unwrap_err().to_string();
        assert!(error.contains("header"), "{error}");
    }
}
