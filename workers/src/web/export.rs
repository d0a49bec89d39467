//! Tables that render as HTML, CSV or JSON from the same rows.

use serde_json::Value;

use super::format::Cell;

/// `rows` are the download's cells (CSV, JSON), stable for spreadsheets
/// and scripts; `shown` are the same cells as the page shows them (compact
/// figures, exact value on hover, drill-down links), `web::format`'s.
pub struct Table {
    pub name: &'static str,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    pub shown: Vec<Vec<Cell>>,
}

/// A column's cell as the page shows it.
pub type Shown<R, C> = (&'static str, fn(&R, &C) -> Cell);

/// A column: its header, and how a row's cell is written given a context
/// (the team's zone for times, `()` when no cell needs one).
pub type Column<R, C> = (&'static str, fn(&R, &C) -> String);

impl Table {
    pub fn of<R, C>(name: &'static str, columns: &[Column<R, C>], rows: &[R], ctx: &C) -> Table {
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| columns.iter().map(|c| (c.1)(r, ctx)).collect())
            .collect();
        Table {
            name,
            columns: columns.iter().map(|c| c.0).collect(),
            shown: rows
                .iter()
                .map(|r| r.iter().map(Cell::text).collect())
                .collect(),
            rows,
        }
    }

    /// The named column's cells link where `href` says (drill-downs); a row
    /// without one stays plain text.
    pub fn link<R>(mut self, name: &str, rows: &[R], href: impl Fn(&R) -> Option<String>) -> Table {
        if let Some(i) = self.columns.iter().position(|c| *c == name) {
            for (cells, r) in self.shown.iter_mut().zip(rows) {
                cells[i].href = href(r);
            }
        }
        self
    }

    /// The page shows the named columns' cells this way instead; the
    /// download keeps its cells. `rows` are the ones the table was made of.
    pub fn show<R, C>(mut self, rows: &[R], ctx: &C, shown: &[Shown<R, C>]) -> Table {
        for (name, f) in shown {
            let Some(i) = self.columns.iter().position(|c| c == name) else {
                continue;
            };
            for (cells, r) in self.shown.iter_mut().zip(rows) {
                cells[i] = f(r, ctx);
            }
        }
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }
}

/// A spreadsheet runs a cell starting with = + - @ as a formula, and some
/// skip a leading tab or carriage return before looking (OWASP "CSV
/// injection"); a leading quote makes it text. Numbers such as -5 stay numbers.
fn neutralise(v: &str) -> String {
    let risky = v.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && v.parse::<f64>().is_err() {
        format!("'{v}")
    } else {
        v.to_string()
    }
}

fn csv_cell(v: &str) -> String {
    let v = neutralise(v);
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

impl Table {
    /// RFC 4180: CRLF line ends, quotes doubled inside quoted cells.
    pub fn csv(&self) -> String {
        let line = |cells: &mut dyn Iterator<Item = &str>| {
            let mut s = cells.map(csv_cell).collect::<Vec<_>>().join(",");
            s.push_str("\r\n");
            s
        };
        let mut out = line(&mut self.columns.iter().copied());
        for r in &self.rows {
            out.push_str(&line(&mut r.iter().map(String::as_str)));
        }
        out
    }

    /// One object per row, keyed by column name.
    pub fn json(&self) -> Value {
        Value::Array(
            self.rows
                .iter()
                .map(|r| {
                    Value::Object(
                        self.columns
                            .iter()
                            .zip(r)
                            .map(|(c, v)| (c.to_string(), Value::String(v.clone())))
                            .collect(),
                    )
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[&[&str]]) -> Table {
        Table {
            name: "t",
            columns: vec!["name", "cost"],
            rows: rows
                .iter()
                .map(|r| r.iter().map(|c| c.to_string()).collect())
                .collect(),
            shown: vec![],
        }
    }

    #[test]
    fn an_empty_table_is_its_header_line() {
        assert_eq!(table(&[]).csv(), "name,cost\r\n");
        assert_eq!(table(&[]).json(), serde_json::json!([]));
    }

    #[test]
    fn formulas_are_neutralised_and_numbers_kept() {
        let csv = table(&[
            &["=HYPERLINK(\"http://evil\")", "-5"],
            &["+1+1", "@SUM(A1)"],
            &["-cmd", "1.5"],
        ])
        .csv();
        assert_eq!(
            csv,
            "name,cost\r\n\"'=HYPERLINK(\"\"http://evil\"\")\",-5\r\n'+1+1,'@SUM(A1)\r\n'-cmd,1.5\r\n"
        );
    }

    #[test]
    fn a_leading_tab_or_carriage_return_is_neutralised_too() {
        let csv = table(&[&["\t=1+1", "\r=cmd"]]).csv();
        assert_eq!(csv, "name,cost\r\n'\t=1+1,\"'\r=cmd\"\r\n");
    }

    #[test]
    fn separators_quotes_and_line_breaks_are_quoted() {
        let csv = table(&[&["a,b", "say \"hi\""], &["two\nlines", "cr\r"]]).csv();
        assert_eq!(
            csv,
            "name,cost\r\n\"a,b\",\"say \"\"hi\"\"\"\r\n\"two\nlines\",\"cr\r\"\r\n"
        );
    }

    #[test]
    fn json_rows_are_keyed_by_column() {
        assert_eq!(
            table(&[&["Alice", "$0.08"]]).json(),
            serde_json::json!([{"name": "Alice", "cost": "$0.08"}])
        );
    }

    #[test]
    fn tables_are_built_column_by_column() {
        let cols: [Column<(i64, &str), i64>; 2] = [
            ("n", |r, k| (r.0 * k).to_string()),
            ("s", |r, _| r.1.to_string()),
        ];
        let rows = [(2, "a"), (3, "b")];
        let t = Table::of("t", &cols, &rows, &10).show(
            &rows,
            &10,
            &[("s", |r, _| Cell::titled(r.1.to_uppercase(), r.1))],
        );
        assert_eq!(t.csv(), "n,s\r\n20,a\r\n30,b\r\n");
        // The page shows its own cells; the download keeps its own.
        assert_eq!(t.shown[1][0], Cell::text("30"));
        assert_eq!(t.shown[1][1], Cell::titled("B", "b"));
    }

    #[test]
    fn only_csv_and_json_are_downloads() {
        assert_eq!(Format::parse("csv"), Some(Format::Csv));
        assert_eq!(Format::parse("json"), Some(Format::Json));
        assert_eq!(Format::parse("html"), None);
        assert_eq!(Format::parse("CSV"), None);
    }
}
