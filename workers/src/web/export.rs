//! Tables that render as HTML, CSV or JSON from the same rows, and the
//! `?format=csv|json` download every table page offers.

use serde_json::Value;
use worker::{Request, Response};

use super::auth::SignedIn;
use crate::util::query;
use crate::vocab::AuditAction;

/// Cells are already formatted for people, so every format shows the same
/// figures (the JSON API serves raw numbers).
pub struct Table {
    pub name: &'static str,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
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

    fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }
}

/// A spreadsheet runs a cell starting with = + - @ as a formula; a leading
/// quote makes it text. Numbers such as -5 stay numbers.
fn neutralise(v: &str) -> String {
    if v.starts_with(['=', '+', '-', '@']) && v.parse::<f64>().is_err() {
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

/// The table as a download when `?format=` asks for one, recorded in the
/// audit log; `None` when the page itself is wanted.
pub async fn download(
    req: &Request,
    user: &SignedIn,
    table: &Table,
) -> worker::Result<Option<Response>> {
    let Some(format) = query(req).get("format").and_then(|f| Format::parse(f)) else {
        return Ok(None);
    };
    let (body, content_type) = match format {
        Format::Csv => (table.csv(), "text/csv; charset=utf-8"),
        Format::Json => (table.json().to_string(), "application/json"),
    };
    user.audit(
        AuditAction::Export,
        serde_json::json!({"table": table.name, "format": format.as_str(), "rows": table.rows.len()}),
    )
    .await?;
    let mut r = Response::ok(body)?;
    r.headers_mut().set("Content-Type", content_type)?;
    r.headers_mut().set(
        "Content-Disposition",
        &format!(
            "attachment; filename=\"tally-{}.{}\"",
            table.name,
            format.as_str()
        ),
    )?;
    Ok(Some(r))
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
    fn only_csv_and_json_are_downloads() {
        assert_eq!(Format::parse("csv"), Some(Format::Csv));
        assert_eq!(Format::parse("json"), Some(Format::Json));
        assert_eq!(Format::parse("html"), None);
        assert_eq!(Format::parse("CSV"), None);
    }
}
