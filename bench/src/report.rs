//! Formatting of figures and a plain-text table.

/// Events per second (0 when no time passed).
pub fn rate(events: usize, seconds: f64) -> f64 {
    if seconds > 0.0 {
        events as f64 / seconds
    } else {
        0.0
    }
}

/// A whole number with thousands separators: `1234567.8` gives `1,234,568`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in megabytes (10^6), one decimal: `231.4 MB`.
pub fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// A ratio with two decimals.
pub fn ratio(numerator: f64, denominator: f64) -> String {
    if denominator > 0.0 {
        format!("{:.2}", numerator / denominator)
    } else {
        "n/a".to_string()
    }
}

/// `PASS` or `MISS`.
pub fn verdict(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "MISS"
    }
}

/// A table: a first column of labels and one column per measured variant, printed with aligned
/// columns; section rows span the table.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Row>,
}

enum Row {
    Section(String),
    Cells(String, Vec<String>),
}

impl Table {
    /// A table whose first line is `header` (the label column's title, then each column's).
    pub fn new(header: Vec<String>) -> Table {
        Table {
            header,
            rows: Vec::new(),
        }
    }

    /// A line that names the rows below it.
    pub fn section(&mut self, title: &str) {
        self.rows.push(Row::Section(title.to_string()));
    }

    /// A row: a label and one cell per column.
    pub fn row(&mut self, label: &str, cells: Vec<String>) {
        self.rows.push(Row::Cells(label.to_string(), cells));
    }

    /// The table as text, one line per row.
    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(String::len).collect();
        for row in &self.rows {
            if let Row::Cells(label, cells) = row {
                widths[0] = widths[0].max(label.len() + 2);
                for (i, cell) in cells.iter().enumerate().take(columns - 1) {
                    widths[i + 1] = widths[i + 1].max(cell.len());
                }
            }
        }
        let mut out = String::new();
        let line = |label: &str, cells: &[String], out: &mut String| {
            out.push_str(&format!("{label:<w$}", w = widths[0]));
            for (i, cell) in cells.iter().enumerate().take(columns - 1) {
                out.push_str(&format!("  {cell:>w$}", w = widths[i + 1]));
            }
            out.push('\n');
        };
        line(&self.header[0], &self.header[1..], &mut out);
        for row in &self.rows {
            match row {
                Row::Section(title) => out.push_str(&format!("{title}\n")),
                Row::Cells(label, cells) => line(&format!("  {label}"), cells, &mut out),
            }
        }
        out
    }
}

/// The middle value of `values` (the median of an odd count), sorting them.
pub fn middle(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The rates of a sink benchmark's runs, in events per second: the receiver's own (pre-built
/// bodies POSTed by a plain client) and end to end (simulator -> broker -> receiver).
#[derive(Default)]
pub struct SinkRates {
    /// The receiver's own rate of each run.
    pub receiver: Vec<f64>,
    /// The end-to-end rate of each run.
    pub end_to_end: Vec<f64>,
}

impl SinkRates {
    /// Prints the last run's rates as `run N: receiver X ev/s, end to end Y ev/s`.
    pub fn print_last_run(&self) {
        let last = |rates: &[f64]| rates.last().map_or("-".to_string(), |r| thousands(*r));
        println!(
            "run {}: receiver {} ev/s, end to end {} ev/s",
            self.receiver.len().max(self.end_to_end.len()),
            last(&self.receiver),
            last(&self.end_to_end)
        );
    }

    /// Prints the figures under `title`: the middle run of the receiver's own rate and of the
    /// end-to-end rate, their ratio, and the verdict against `target` (events per second end to
    /// end).
    pub fn print_figures(mut self, title: &str, target: f64) {
        let receiver = middle(&mut self.receiver);
        let end_to_end = middle(&mut self.end_to_end);
        println!();
        println!("{title}:");
        println!(
            "  receiver's own rate (raw client, pre-built bodies): {:>10} ev/s",
            thousands(receiver)
        );
        println!(
            "  end to end (simulator -> broker -> receiver):       {:>10} ev/s",
            thousands(end_to_end)
        );
        println!(
            "  end to end / receiver:                              {:>10}",
            ratio(end_to_end, receiver)
        );
        println!(
            "  target end to end >= {:>6} ev/s:                   {:>10}",
            thousands(target),
            verdict(end_to_end >= target)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(1234567.8), "1,234,568");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(megabytes(231_449_999), "231.4 MB");
        assert_eq!(ratio(1.0, 4.0), "0.25");
        assert_eq!(ratio(1.0, 0.0), "n/a");
        let mut t = Table::new(vec!["what".into(), "a".into()]);
        t.section("s");
        t.row("x", vec!["12".into()]);
        assert_eq!(t.render(), "what   a\ns\n  x   12\n");
    }
}
