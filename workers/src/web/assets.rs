//! `GET /static/<file>`: the chart library, the chart script and the
//! stylesheet, compiled into the Worker so a deploy is one artefact.

use worker::Response;

use super::error::ApiError;

/// Body and content type of each asset.
pub fn asset(file: &str) -> Option<(&'static str, &'static str)> {
    Some(match file {
        "uplot.js" => (
            include_str!("../../static/uPlot.iife.min.js"),
            "application/javascript",
        ),
        "uplot.css" => (include_str!("../../static/uPlot.min.css"), "text/css"),
        "chart.js" => (
            include_str!("../../static/chart.js"),
            "application/javascript",
        ),
        "tally.css" => (include_str!("../../static/tally.css"), "text/css"),
        "copy.js" => (
            include_str!("../../static/copy.js"),
            "application/javascript",
        ),
        "confirm.js" => (
            include_str!("../../static/confirm.js"),
            "application/javascript",
        ),
        "firstrun.js" => (
            include_str!("../../static/firstrun.js"),
            "application/javascript",
        ),
        _ => return None,
    })
}

pub fn serve(file: &str) -> Result<Response, ApiError> {
    let (body, content_type) = asset(file).ok_or_else(|| ApiError::not_found("no such asset"))?;
    let mut r = Response::ok(body)?;
    r.headers_mut().set("Content-Type", content_type)?;
    r.headers_mut()
        .set("Cache-Control", "public, max-age=86400")?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_reference_only_served_assets() {
        for f in [
            "uplot.js",
            "uplot.css",
            "chart.js",
            "tally.css",
            "copy.js",
            "confirm.js",
            "firstrun.js",
        ] {
            assert!(asset(f).is_some_and(|(body, _)| !body.is_empty()), "{f}");
        }
        assert!(asset("../Cargo.toml").is_none());
        // The chart script reads the attribute the overview writes.
        assert!(asset("chart.js").unwrap().0.contains("data-chart"));
    }
}
