//! What a dashboard page answers instead of its content; JSON errors are
//! `crate::error::ApiError`, re-exported here for the web layer.

use worker::Response;

pub use crate::error::{ApiError, Msg};

use super::dashboard::layout;

/// What a dashboard page answers instead of its content. Pages render
/// HTML errors; anything else falls through to the JSON `ApiError`.
#[derive(Debug)]
pub enum PageError {
    /// No valid session: the sign-in page, with a note when one helps.
    SignIn {
        message: Option<&'static str>,
        status: u16,
    },
    /// No valid developer self-view session: how to open one.
    DeveloperSignIn {
        message: Option<&'static str>,
        status: u16,
    },
    /// Signed in, but the role or the form's CSRF token does not allow it.
    Forbidden(Msg),
    Api(ApiError),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError::Api(e)
    }
}

impl From<worker::Error> for PageError {
    fn from(e: worker::Error) -> Self {
        PageError::Api(ApiError::Internal(e))
    }
}

impl PageError {
    pub fn into_response(self) -> worker::Result<Response> {
        match self {
            PageError::SignIn { message, status } => layout::signin_page(message, status),
            PageError::DeveloperSignIn { message, status } => {
                layout::developer_signin_page(message, status)
            }
            PageError::Forbidden(message) => layout::forbidden_page(&message),
            PageError::Api(e) => e.into_response(),
        }
    }
}
