//! Tables that render as HTML, CSV or JSON from the same rows.

use std::cmp::Ordering;
use std::collections::HashMap;

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
    /// The order the page shows rows in (indices into `rows`), changed by
    /// `listed`'s sort; downloads keep the stored order.
    pub order: Vec<usize>,
    /// Sort links and pages, when the table is `listed`.
    pub listing: Option<Listing>,
}

/// A table's server-side sort and page, and the link that reproduces the
/// view (range and filters included) so sorting and paging keep them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The page's path and kept query, e.g. `/sessions?from=…&to=…`.
    pub base: String,
    /// Column index and whether it is descending.
    pub sort: Option<(usize, bool)>,
    /// 1-based.
    pub page: usize,
    pub per_page: usize,
}

impl Listing {
    fn href(&self, columns: &[&str], sort: Option<(usize, bool)>, page: usize) -> String {
        let mut h = self.base.clone();
        let mut add = |k: &str, v: &str| {
            h.push(if h.contains('?') { '&' } else { '?' });
            h.push_str(k);
            h.push('=');
            h.extend(url::form_urlencoded::byte_serialize(v.as_bytes()));
        };
        if let Some((c, desc)) = sort {
            add("sort", columns[c]);
            add("dir", if desc { "desc" } else { "asc" });
        }
        if page > 1 {
            add("page", &page.to_string());
        }
        h
    }
}

/// Sort keys are the download's cells: amounts, counts and percentages
/// compare as numbers ("$1,234.00" > "$99.50"), other text in natural order
/// ("1h 02m" < "10h 00m"), case-insensitively. Text sorts before numbers.
fn number(s: &str) -> Option<f64> {
    s.trim()
        .trim_start_matches('$')
        .trim_end_matches(['%', '×'])
        .replace(',', "")
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
}

pub fn compare_cells(a: &str, b: &str) -> Ordering {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => natural(a, b),
    }
}

fn natural(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.chars().peekable(), b.chars().peekable());
    loop {
        match (x.peek().copied(), y.peek().copied()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let run = |it: &mut std::iter::Peekable<std::str::Chars>| {
                    let mut s = String::new();
                    while let Some(c) = it.peek().copied().filter(char::is_ascii_digit) {
                        s.push(c);
                        it.next();
                    }
                    s.trim_start_matches('0').to_string()
                };
                let (m, n) = (run(&mut x), run(&mut y));
                let o = m.len().cmp(&n.len()).then_with(|| m.cmp(&n));
                if o != Ordering::Equal {
                    return o;
                }
            }
            (Some(c), Some(d)) => {
                let o = c.to_lowercase().cmp(d.to_lowercase());
                if o != Ordering::Equal {
                    return o;
                }
                x.next();
                y.next();
            }
        }
    }
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
            order: (0..rows.len()).collect(),
            rows,
            listing: None,
        }
    }

    /// Sorted by `?sort=<column>&dir=asc|desc` and cut into pages of
    /// `per_page` (`?page=N`, 1-based; 0 keeps one page), with links built
    /// on `base` so the range and filters survive. Call last: `link` and
    /// `show` pair cells with rows in stored order.
    pub fn listed(mut self, base: String, q: &HashMap<String, String>, per_page: usize) -> Table {
        let sort = q
            .get("sort")
            .and_then(|s| self.columns.iter().position(|c| c == s))
            .map(|c| (c, q.get("dir").map(String::as_str) != Some("asc")));
        if let Some((c, desc)) = sort {
            // The exact value on hover when it is a number (a download's
            // money is rounded to cents, which would tie $0.006 and $0.009).
            let key = |i: usize| -> &str {
                match self
                    .shown
                    .get(i)
                    .and_then(|r| r.get(c))
                    .and_then(|c| c.title.as_deref())
                {
                    Some(t) if number(t).is_some() => t,
                    _ => &self.rows[i][c],
                }
            };
            let mut order = self.order.clone();
            order.sort_by(|&a, &b| {
                let o = compare_cells(key(a), key(b));
                if desc {
                    o.reverse()
                } else {
                    o
                }
            });
            self.order = order;
        }
        let pages = self.pages_of(per_page);
        let page = q
            .get("page")
            .and_then(|p| p.parse::<usize>().ok())
            .unwrap_or(1)
            .clamp(1, pages);
        self.listing = Some(Listing {
            base,
            sort,
            page,
            per_page,
        });
        self
    }

    fn pages_of(&self, per_page: usize) -> usize {
        if per_page == 0 {
            1
        } else {
            self.rows.len().div_ceil(per_page).max(1)
        }
    }

    /// The indices of the rows the page shows, in order.
    pub fn visible(&self) -> &[usize] {
        match &self.listing {
            Some(l) if l.per_page > 0 => {
                let from = ((l.page - 1) * l.per_page).min(self.order.len());
                let to = (from + l.per_page).min(self.order.len());
                &self.order[from..to]
            }
            _ => &self.order,
        }
    }

    /// A header's sort link (descending first, then flipping) and its
    /// `aria-sort`, when the table is listed.
    pub fn sort_link(&self, column: usize) -> Option<(String, Option<&'static str>)> {
        let l = self.listing.as_ref()?;
        let (next, state) = match l.sort {
            Some((c, true)) if c == column => ((column, false), Some("descending")),
            Some((c, false)) if c == column => ((column, true), Some("ascending")),
            _ => ((column, true), None),
        };
        Some((l.href(&self.columns, Some(next), 1), state))
    }

    /// "Showing 51–55 of 55" and the links to the other pages, when there
    /// is more than one.
    pub fn pager(&self) -> Option<Pager> {
        let l = self.listing.as_ref()?;
        let pages = self.pages_of(l.per_page);
        if pages <= 1 {
            return None;
        }
        let first = (l.page - 1) * l.per_page + 1;
        let last = (l.page * l.per_page).min(self.rows.len());
        Some(Pager {
            first,
            last,
            total: self.rows.len(),
            page: l.page,
            links: (1..=pages)
                .map(|p| (p, l.href(&self.columns, l.sort, p)))
                .collect(),
        })
    }
}

/// What the page says about a long table's pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pager {
    pub first: usize,
    pub last: usize,
    pub total: usize,
    pub page: usize,
    pub links: Vec<(usize, String)>,
}

impl Table {
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
            order: (0..rows.len()).collect(),
            listing: None,
        }
    }

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn cells_sort_as_numbers_or_in_natural_order() {
        assert_eq!(compare_cells("$1,234.00", "$99.50"), Ordering::Greater);
        assert_eq!(compare_cells("89.0%", "9.5%"), Ordering::Greater);
        assert_eq!(compare_cells("1h 02m 03s", "10h 00m 00s"), Ordering::Less);
        assert_eq!(compare_cells("ada", "Bob"), Ordering::Less);
        assert_eq!(compare_cells("—", "0"), Ordering::Less);
        assert_eq!(compare_cells("dev2", "dev10"), Ordering::Less);
    }

    #[test]
    fn sorting_uses_the_exact_value_on_hover() {
        let mut t = table(&[&["a", "$0.01"], &["b", "$0.01"], &["c", "$0.00"]]);
        t.shown = [("$0.006", "a"), ("$0.009", "b"), ("$0.003", "c")]
            .iter()
            .map(|(exact, name)| vec![Cell::text(*name), Cell::titled("", *exact)])
            .collect();
        let t = t.listed("/x".into(), &q(&[("sort", "cost"), ("dir", "asc")]), 0);
        assert_eq!(t.visible(), [2, 0, 1]);
    }

    #[test]
    fn listed_tables_sort_page_and_keep_the_query() {
        let rows: Vec<Vec<String>> = (1..=7)
            .map(|n| vec![format!("n{n}"), format!("${n}.00")])
            .collect();
        let refs: Vec<Vec<&str>> = rows
            .iter()
            .map(|r| r.iter().map(String::as_str).collect())
            .collect();
        let slices: Vec<&[&str]> = refs.iter().map(Vec::as_slice).collect();
        let t = table(&slices).listed(
            "/x?from=2026-01-01".into(),
            &q(&[("sort", "cost"), ("page", "2")]),
            3,
        );
        // Descending by cost: 7 6 5 | 4 3 2 | 1.
        assert_eq!(t.visible(), [3, 2, 1]);
        let p = t.pager().unwrap();
        assert_eq!((p.first, p.last, p.total, p.page), (4, 6, 7, 2));
        assert_eq!(
            p.links[2],
            (3, "/x?from=2026-01-01&sort=cost&dir=desc&page=3".into())
        );
        assert_eq!(p.links[0].1, "/x?from=2026-01-01&sort=cost&dir=desc");
        assert_eq!(
            t.sort_link(1),
            Some((
                "/x?from=2026-01-01&sort=cost&dir=asc".into(),
                Some("descending")
            ))
        );
        assert_eq!(
            t.sort_link(0),
            Some(("/x?from=2026-01-01&sort=name&dir=desc".into(), None))
        );
        let last = table(&slices).listed(
            "/x".into(),
            &q(&[("sort", "cost"), ("dir", "asc"), ("page", "99")]),
            3,
        );
        assert_eq!(last.visible(), [6]);
        assert_eq!(last.pager().unwrap().first, 7);
        // One page: no pager; unknown columns leave the stored order.
        let one = table(&slices).listed("/x".into(), &q(&[("sort", "nope")]), 0);
        assert_eq!(one.visible(), [0, 1, 2, 3, 4, 5, 6]);
        assert!(one.pager().is_none());
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
