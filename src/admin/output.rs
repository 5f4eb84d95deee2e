//! How a verb's answer is shown: an aligned table (and notes) on a terminal, or one JSON document.

use serde_json::Value;

/// A verb's answer: the JSON document and the table with the same content.
pub struct Report {
    pub json: Value,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Lines printed after the table (totals, a summary).
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(json: Value, header: &[&str]) -> Self {
        Self {
            json,
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text: columns padded to their widest cell, two spaces apart.
    pub fn table(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, cell) in cells.iter().enumerate().take(columns) {
                if i + 1 == columns {
                    out.push_str(cell);
                } else {
                    out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
                }
            }
            out.trim_end().to_owned()
        };
        let mut text = String::new();
        if !self.header.is_empty() {
            text.push_str(&line(&self.header));
            text.push('\n');
        }
        for row in &self.rows {
            text.push_str(&line(row));
            text.push('\n');
        }
        for n in &self.notes {
            text.push_str(n);
            text.push('\n');
        }
        text
    }

    pub fn print(&self, json: bool) {
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&self.json).unwrap_or_default()
            );
        } else {
            print!("{}", self.table());
        }
    }
}

/// A timestamp in ms as `2026-11-29T09:41:12.345Z` (0: `-`).
pub fn time_text(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    let t = apogee_client::trace::view::UtcTime::from_epoch_ms(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.milli
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_times_read_as_utc() {
        let mut r = Report::new(Value::Null, &["#Topic", "#QID"]);
        r.row(vec!["a-long-topic".into(), "0".into()]);
        r.row(vec!["t".into(), "12".into()]);
        r.notes.push("Diff Total: 3".into());
        assert_eq!(
            r.table(),
            "#Topic        #QID\na-long-topic  0\nt             12\nDiff Total: 3\n"
        );
        assert_eq!(time_text(0), "-");
        assert_eq!(time_text(1_764_409_272_345), "2025-11-29T09:41:12.345Z");
    }
}
