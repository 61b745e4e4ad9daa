//! The one place where failures become what API clients see: a GraphQL error with
//! `extensions.code`. Infrastructure failures are logged in full and shown as opaque
//! `INTERNAL` errors.

use async_graphql::ErrorExtensions;
use cartie_domain::api_token::ApiTokenError;
use cartie_domain::bot::TelegramBotError;
use cartie_domain::inbox::ConversationError;
use cartie_domain::lead::LeadError;
use cartie_domain::listing::ListingError;
use cartie_domain::member::MemberError;
use cartie_domain::partner::PartnerError;
use cartie_domain::request::RequestError;
use cartie_domain::values::FieldError;
use cartie_domain::workspace::WorkspaceError;
use cartie_store::CommandError;

/// Error codes of the API (`extensions.code`).
pub mod codes {
    pub const VALIDATION: &str = "VALIDATION";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const CONFLICT: &str = "CONFLICT";
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// A service Cartie depends on (Telegram) did not answer; try again later.
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    pub const INTERNAL: &str = "INTERNAL";
}

/// A failure as the API reports it. Deliberately not `Display`: async-graphql converts any
/// `Display` type into an error without a code, so the only way out of here is the
/// conversion below, which always sets `extensions.code`.
#[derive(Debug)]
pub enum ApiError {
    Validation(FieldError),
    /// Not ready for the requested state: the message and the missing fields.
    Incomplete(String, Vec<&'static str>),
    NotFound(&'static str),
    Conflict(String),
    Unauthenticated(String),
    /// Authenticated, but the caller's role does not allow this.
    Forbidden(String),
    /// Too many attempts; try again after this many seconds.
    RateLimited {
        retry_after_secs: u64,
    },
    /// The change was recorded but the read model has not shown it within the wait: not a
    /// fault to hide, the client should read again shortly.
    CatchingUp(String),
    /// Telegram (or another outside service) could not be reached.
    Unavailable(String),
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ApiError::Internal(error.into())
    }

    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(FieldError::new(field, message))
    }
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        ApiError::Validation(error)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        ApiError::internal(error)
    }
}

impl From<ListingError> for ApiError {
    fn from(error: ListingError) -> Self {
        match error {
            ListingError::NotFound => ApiError::NotFound("listing"),
            ListingError::Invalid(field) => ApiError::Validation(field),
            ListingError::Incomplete { ref missing, .. } => {
                let missing = missing.clone();
                ApiError::Incomplete(error.to_string(), missing)
            }
            ListingError::AlreadyExists
            | ListingError::IllegalTransition { .. }
            | ListingError::Archived
            | ListingError::VersionMismatch { .. } => ApiError::Conflict(error.to_string()),
        }
    }
}

impl From<WorkspaceError> for ApiError {
    fn from(error: WorkspaceError) -> Self {
        match error {
            WorkspaceError::NotFound => ApiError::NotFound("workspace"),
            WorkspaceError::NoSuchSecret(_) => ApiError::NotFound("integration secret"),
            WorkspaceError::Invalid(field) => ApiError::Validation(field),
            WorkspaceError::SlugTaken(_) | WorkspaceError::SlugReserved(_) => {
                ApiError::Conflict(error.to_string())
            }
        }
    }
}

impl From<MemberError> for ApiError {
    fn from(error: MemberError) -> Self {
        match error {
            MemberError::NotFound => ApiError::NotFound("member"),
            MemberError::Invalid(field) => ApiError::Validation(field),
            MemberError::AlreadyMember(_) | MemberError::EmailMismatch => {
                ApiError::Conflict(error.to_string())
            }
        }
    }
}

impl From<ApiTokenError> for ApiError {
    fn from(error: ApiTokenError) -> Self {
        match error {
            ApiTokenError::NotFound => ApiError::NotFound("API token"),
            ApiTokenError::Invalid(field) => ApiError::Validation(field),
            ApiTokenError::AlreadyExists => ApiError::Conflict(error.to_string()),
        }
    }
}

impl From<ConversationError> for ApiError {
    fn from(error: ConversationError) -> Self {
        match error {
            ConversationError::NotFound => ApiError::NotFound("conversation"),
            ConversationError::Invalid(field) => ApiError::Validation(field),
            ConversationError::Blocked | ConversationError::NotAwaitingDelivery(_) => {
                ApiError::Conflict(error.to_string())
            }
        }
    }
}

impl From<TelegramBotError> for ApiError {
    fn from(error: TelegramBotError) -> Self {
        match error {
            TelegramBotError::NotFound => ApiError::NotFound("bot"),
            TelegramBotError::Invalid(field) => ApiError::Validation(field),
            TelegramBotError::AlreadyRegistered | TelegramBotError::RegisteredElsewhere => {
                ApiError::Conflict(error.to_string())
            }
        }
    }
}

impl From<LeadError> for ApiError {
    fn from(error: LeadError) -> Self {
        match error {
            LeadError::NotFound => ApiError::NotFound("lead"),
            LeadError::Invalid(field) => ApiError::Validation(field),
            LeadError::AlreadyExists | LeadError::IllegalTransition { .. } => {
                ApiError::Conflict(error.to_string())
            }
        }
    }
}

impl From<RequestError> for ApiError {
    fn from(error: RequestError) -> Self {
        match error {
            RequestError::NotFound => ApiError::NotFound("request"),
            RequestError::VariantNotFound => ApiError::NotFound("variant"),
            RequestError::ProposalNotFound => ApiError::NotFound("proposal"),
            RequestError::Invalid(field) => ApiError::Validation(field),
            RequestError::NotAddressed | RequestError::NotYourVariant => {
                ApiError::Forbidden(error.to_string())
            }
            RequestError::AlreadyExists
            | RequestError::VariantExists
            | RequestError::Closed(_)
            | RequestError::NotDraft(_)
            | RequestError::IllegalVariantTransition { .. }
            | RequestError::AnotherAccepted
            | RequestError::NotAccepted
            | RequestError::NothingToPropose => ApiError::Conflict(error.to_string()),
        }
    }
}

impl From<PartnerError> for ApiError {
    fn from(error: PartnerError) -> Self {
        match error {
            PartnerError::NotFound => ApiError::NotFound("partner"),
            PartnerError::Invalid(field) => ApiError::Validation(field),
            PartnerError::AlreadyExists => ApiError::Conflict(error.to_string()),
        }
    }
}

impl<E> From<CommandError<E>> for ApiError
where
    E: std::error::Error + Into<ApiError>,
{
    fn from(error: CommandError<E>) -> Self {
        match error {
            CommandError::Rejected(error) => error.into(),
            CommandError::Conflict => ApiError::Conflict(
                "it was changed by someone else at the same time; reload it and try again".into(),
            ),
            CommandError::Infrastructure(error) => ApiError::Internal(error),
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::Validation(field) => {
                async_graphql::Error::new(format!("invalid {}: {}", field.field, field.message))
                    .extend_with(|_, e| {
                        e.set("code", codes::VALIDATION);
                        e.set("field", field.field.clone());
                    })
            }
            ApiError::Incomplete(message, missing) => async_graphql::Error::new(message)
                .extend_with(|_, e| {
                    e.set("code", codes::VALIDATION);
                    e.set("field", missing.first().copied().unwrap_or_default());
                    e.set("fields", missing.clone());
                }),
            ApiError::NotFound(what) => async_graphql::Error::new(format!("{what} not found"))
                .extend_with(|_, e| e.set("code", codes::NOT_FOUND)),
            ApiError::Conflict(message) => async_graphql::Error::new(message)
                .extend_with(|_, e| e.set("code", codes::CONFLICT)),
            ApiError::Unauthenticated(message) => async_graphql::Error::new(message)
                .extend_with(|_, e| e.set("code", codes::UNAUTHENTICATED)),
            ApiError::Forbidden(message) => async_graphql::Error::new(message)
                .extend_with(|_, e| e.set("code", codes::FORBIDDEN)),
            ApiError::RateLimited { retry_after_secs } => async_graphql::Error::new(format!(
                "too many attempts; try again in {retry_after_secs} s"
            ))
            .extend_with(|_, e| {
                e.set("code", codes::RATE_LIMITED);
                e.set("retryAfterSeconds", retry_after_secs);
            }),
            ApiError::CatchingUp(message) => {
                async_graphql::Error::new(message).extend_with(|_, e| {
                    e.set("code", codes::INTERNAL);
                    e.set("retryable", true);
                })
            }
            ApiError::Unavailable(message) => {
                async_graphql::Error::new(message).extend_with(|_, e| {
                    e.set("code", codes::UNAVAILABLE);
                    e.set("retryable", true);
                })
            }
            ApiError::Internal(source) => {
                let reference = uuid::Uuid::now_v7();
                tracing::error!(%reference, error = %source, details = ?source, "internal error");
                async_graphql::Error::new(format!("internal error (reference {reference})"))
                    .extend_with(|_, e| e.set("code", codes::INTERNAL))
            }
        }
    }
}
