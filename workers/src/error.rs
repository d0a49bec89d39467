//! Every error the Worker answers as JSON, and how each becomes a response:
//! one place decides status codes, bodies and headers such as Retry-After.
//! Ingest and the web layer both answer through it; dashboard pages wrap it
//! in `web::error::PageError` to answer HTML.

use std::borrow::Cow;

use serde_json::{json, Value};
use tally_core::wire::BatchError;
use worker::Response;

pub type Msg = Cow<'static, str>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400; `code` is `bad_request` unless the client needs something finer.
    #[error("{message}")]
    BadRequest { code: &'static str, message: Msg },
    /// 400 naming the offending event and field, straight from the decoder.
    #[error("invalid batch: {0}")]
    BadBatch(BatchError),
    #[error("{message}")]
    Unauthorized { code: &'static str, message: Msg },
    #[error("{message}")]
    Forbidden { code: &'static str, message: Msg },
    #[error("{0}")]
    NotFound(Msg),
    #[error("method not allowed")]
    MethodNotAllowed { allow: Vec<&'static str> },
    #[error("{message}")]
    PayloadTooLarge { code: &'static str, message: Msg },
    /// 410: the team was deleted; agents stop instead of retrying.
    #[error("{message}")]
    Gone { code: &'static str, message: Msg },
    #[error("rate limited; retry after {retry_after_s} s")]
    TooManyRequests { retry_after_s: u64, message: Msg },
    /// The cause goes to the log only: it may name bindings or SQL.
    #[error("internal: {0}")]
    Internal(worker::Error),
}

impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> Self {
        ApiError::Internal(e)
    }
}

impl From<BatchError> for ApiError {
    fn from(e: BatchError) -> Self {
        ApiError::BadBatch(e)
    }
}

impl ApiError {
    pub fn bad_request(message: impl Into<Msg>) -> Self {
        ApiError::BadRequest {
            code: "bad_request",
            message: message.into(),
        }
    }

    pub fn unauthorized(message: impl Into<Msg>) -> Self {
        ApiError::Unauthorized {
            code: "unauthorized",
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<Msg>) -> Self {
        ApiError::Forbidden {
            code: "forbidden",
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<Msg>) -> Self {
        ApiError::NotFound(message.into())
    }

    /// Status, JSON body and extra headers: the whole answer except the
    /// platform's Response object, so it can be checked natively.
    pub fn parts(&self) -> (u16, Value, Vec<(&'static str, String)>) {
        let body = |code: &str, message: &str| json!({"error": code, "message": message});
        match self {
            ApiError::BadRequest { code, message } => (400, body(code, message), vec![]),
            ApiError::BadBatch(e) => {
                let mut b = json!({"error": "invalid_batch"});
                if let (Value::Object(out), Ok(Value::Object(detail))) =
                    (&mut b, serde_json::to_value(e))
                {
                    out.extend(detail);
                }
                (400, b, vec![])
            }
            ApiError::Unauthorized { code, message } => (401, body(code, message), vec![]),
            ApiError::Forbidden { code, message } => (403, body(code, message), vec![]),
            ApiError::NotFound(message) => (404, body("not_found", message), vec![]),
            ApiError::MethodNotAllowed { allow } => (
                405,
                body("method_not_allowed", "this route does not take that method"),
                vec![("Allow", allow.join(", "))],
            ),
            ApiError::PayloadTooLarge { code, message } => (413, body(code, message), vec![]),
            ApiError::Gone { code, message } => (410, body(code, message), vec![]),
            ApiError::TooManyRequests {
                retry_after_s,
                message,
            } => (
                429,
                body("rate_limited", message),
                vec![("Retry-After", retry_after_s.to_string())],
            ),
            ApiError::Internal(_) => (
                500,
                body("internal", "internal error; see the Worker logs"),
                vec![],
            ),
        }
    }

    pub fn into_response(self) -> worker::Result<Response> {
        if let ApiError::Internal(e) = &self {
            worker::console_error!("request failed: {e}");
        }
        let (status, body, headers) = self.parts();
        let mut r = Response::from_json(&body)?.with_status(status);
        for (k, v) in headers {
            r.headers_mut().set(k, &v)?;
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_keep_their_wire_shape() {
        let (s, b, h) = ApiError::unauthorized("sign in first").parts();
        assert_eq!(
            (s, b, h),
            (
                401,
                json!({"error": "unauthorized", "message": "sign in first"}),
                vec![]
            )
        );
        let (s, b, _) = ApiError::Forbidden {
            code: "csrf",
            message: "missing or wrong X-CSRF-Token".into(),
        }
        .parts();
        assert_eq!((s, b["error"].as_str()), (403, Some("csrf")));
        let (s, b, _) = ApiError::not_found("no such route").parts();
        assert_eq!(
            (s, b),
            (
                404,
                json!({"error": "not_found", "message": "no such route"})
            )
        );
    }

    #[test]
    fn a_bad_batch_names_index_field_and_the_decoders_message() {
        let e = BatchError {
            index: Some(1),
            field: "tokens.output".into(),
            message: "must not be negative".into(),
        };
        let (s, b, _) = ApiError::from(e).parts();
        assert_eq!(s, 400);
        assert_eq!(
            b,
            json!({"error": "invalid_batch", "index": 1, "field": "tokens.output", "message": "must not be negative"})
        );
    }

    #[test]
    fn limits_carry_their_headers() {
        let (s, _, h) = ApiError::TooManyRequests {
            retry_after_s: 5,
            message: "team event budget exhausted; retry later".into(),
        }
        .parts();
        assert_eq!((s, h), (429, vec![("Retry-After", "5".to_string())]));
        let (s, _, h) = ApiError::MethodNotAllowed {
            allow: vec!["GET", "POST"],
        }
        .parts();
        assert_eq!((s, h), (405, vec![("Allow", "GET, POST".to_string())]));
        let (s, _, _) = ApiError::PayloadTooLarge {
            code: "too_large",
            message: "batch body is larger than 1 MiB".into(),
        }
        .parts();
        assert_eq!(s, 413);
    }

    #[test]
    fn internal_errors_answer_a_generic_body() {
        let (s, b, _) =
            ApiError::from(worker::Error::RustError("D1_ERROR: no such table".into())).parts();
        assert_eq!(s, 500);
        assert!(!b.to_string().contains("D1_ERROR"));
    }
}
