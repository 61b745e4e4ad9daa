//! The HTTP surface: `/graphql` (GraphiQL on GET), `/health`, `/health/deep`, `/metrics`,
//! and Telegram's webhooks at `/telegram/{bot_id}/webhook`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use async_graphql::http::GraphiQLSource;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::accounts;
use crate::app::Services;
use crate::auth;
use crate::error::{codes, ApiError};
use crate::graphql::{
    self, AuthFailure, CartieSchema, ClientAddress, RequestContext, WebSocketSession,
};
use crate::telemetry;

/// `/health/deep` counts a projection's lag up to this many events ("at least" beyond).
const MAX_LAG_COUNTED: i64 = 100_000;

/// Largest request body accepted; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
struct HttpState {
    schema: CartieSchema,
    services: Arc<Services>,
}

pub fn router(services: Arc<Services>) -> Router {
    let state = HttpState {
        schema: graphql::schema(services.clone()),
        services,
    };
    Router::new()
        .route("/graphql", get(graphiql).post(graphql_handler))
        .route("/graphql/ws", get(graphql_ws))
        .route("/health", get(health))
        .route("/health/deep", get(deep_health))
        .route("/metrics", get(metrics))
        .route("/telegram/{bot_id}/webhook", post(telegram_webhook))
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
}

/// Telegram's updates for WEBHOOK bots (see [`crate::telegram::webhook`]).
async fn telegram_webhook(
    State(state): State<HttpState>,
    bot_id: axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    crate::telegram::webhook::webhook(State(state.services), bot_id, headers, body).await
}

async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .finish(),
    )
}

/// Subscriptions over WebSocket (graphql-transport-ws, and the older graphql-ws). The
/// client authenticates in `connection_init` with `{"Authorization": "Bearer <token>"}`
/// (or `{"token": "<token>"}`); without a valid token the connection is refused.
async fn graphql_ws(
    State(state): State<HttpState>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let services = state.services.clone();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |stream| {
            GraphQLWebSocket::new(stream, state.schema.clone(), protocol)
                .on_connection_init(move |payload| async move {
                    let header = payload
                        .get("Authorization")
                        .or_else(|| payload.get("authorization"))
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                        .or_else(|| {
                            payload
                                .get("token")
                                .and_then(|v| v.as_str())
                                .map(|t| format!("Bearer {t}"))
                        });
                    let token = auth::bearer(header.as_deref())
                        .map_err(|e| async_graphql::Error::new(e.to_string()))?
                        .ok_or_else(|| {
                            async_graphql::Error::new(
                                "send {\"Authorization\": \"Bearer <token>\"} in connection_init",
                            )
                        })?;
                    let principal =
                        accounts::authenticate(&services, token)
                            .await
                            .map_err(|_| {
                                async_graphql::Error::new("invalid, expired or revoked token")
                            })?;
                    let mut data = async_graphql::Data::default();
                    data.insert(RequestContext::new(principal));
                    data.insert(WebSocketSession {
                        token: secrecy::SecretString::from(token.to_string()),
                    });
                    Ok(data)
                })
                .serve()
        })
}

/// Authenticates the caller when a bearer token is sent (requests without one run
/// anonymously: only public operations, such as signing in, will answer), then reads the
/// body as bytes (413 past the limit, with or without a Content-Length) and only then
/// parses the GraphQL request.
async fn graphql_handler(State(state): State<HttpState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let client: Option<IpAddr> = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    // A token that fails (expired, revoked…) does not stop public operations: a client
    // refreshing its session may still send the expired access token. Anything else
    // answers UNAUTHENTICATED with the reason, and the response is a 401.
    let mut auth_failure = None;
    let principal = match auth::bearer(authorization) {
        Err(error) => return unauthenticated(&error.to_string()),
        Ok(None) => None,
        Ok(Some(token)) => match accounts::authenticate(&state.services, token).await {
            Ok(principal) => Some(principal),
            Err(ApiError::Unauthenticated(message)) => {
                auth_failure = Some(message);
                None
            }
            Err(error) => {
                let error: async_graphql::Error = error.into();
                let body = json!({ "data": null, "errors": [{ "message": error.message, "extensions": { "code": codes::INTERNAL } }] });
                return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
            }
        },
    };
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            let body = json!({
                "data": null,
                "errors": [{ "message": format!("the request body is larger than {MAX_BODY_BYTES} bytes"), "extensions": { "code": codes::VALIDATION } }],
            });
            return (StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response();
        }
    };
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            let body = json!({
                "data": null,
                "errors": [{ "message": format!("malformed GraphQL request: {error}"), "extensions": { "code": codes::VALIDATION } }],
            });
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    };
    let started = Instant::now();
    let mut request = request.data(ClientAddress(client));
    if let Some(principal) = principal {
        request = request.data(RequestContext::new(principal));
    }
    if let Some(message) = &auth_failure {
        request = request.data(AuthFailure(message.clone()));
    }
    let mut response = state.schema.execute(request).await;
    // Errors raised before execution (syntax, unknown fields, bad enum values, depth and
    // complexity limits) carry no code of ours: they are the caller's invalid request.
    for error in &mut response.errors {
        let has_code = error
            .extensions
            .as_ref()
            .is_some_and(|extensions| extensions.get("code").is_some());
        if !has_code {
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", codes::VALIDATION);
        }
    }
    metrics::histogram!("cartie_graphql_request_seconds").record(started.elapsed().as_secs_f64());
    let refused = auth_failure.is_some()
        && response.errors.iter().any(|error| {
            error
                .extensions
                .as_ref()
                .and_then(|extensions| extensions.get("code"))
                .is_some_and(|code| *code == async_graphql::Value::from(codes::UNAUTHENTICATED))
        });
    if refused {
        metrics::counter!("cartie_graphql_unauthenticated_total").increment(1);
        let mut http = GraphQLResponse::from(response).into_response();
        *http.status_mut() = StatusCode::UNAUTHORIZED;
        http.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return http;
    }
    GraphQLResponse::from(response).into_response()
}

fn unauthenticated(message: &str) -> Response {
    metrics::counter!("cartie_graphql_unauthenticated_total").increment(1);
    let body = json!({
        "data": null,
        "errors": [{ "message": message, "extensions": { "code": codes::UNAUTHENTICATED } }],
    });
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(body),
    )
        .into_response()
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// How long `/health/deep` waits for the database before it answers that it is not
/// answering (a pooled connection to a server that stopped responding would wait forever).
const DEEP_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Database reachable, and where each projection stands against the log.
async fn deep_health(State(state): State<HttpState>) -> Response {
    let (status, body) = tokio::time::timeout(DEEP_CHECK_TIMEOUT, deep_report(&state.services))
        .await
        .unwrap_or_else(|_| {
            tracing::error!("health check: the database did not answer in time");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({ "status": "unavailable", "database": "not answering" }),
            )
        });
    (status, Json(body)).into_response()
}

async fn deep_report(services: &Services) -> (StatusCode, serde_json::Value) {
    let unavailable = |database: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "unavailable", "database": database }),
        )
    };
    if let Err(error) = services.db.ping().await {
        tracing::error!(%error, "health check: database unreachable");
        return unavailable("unreachable");
    }
    let log = cartie_store::EventLog::new(services.db.clone());
    let head = match log.head().await {
        Ok(head) => head,
        Err(error) => {
            // Reachable, but the log cannot be read (its tables gone, say).
            tracing::error!(%error, "health check: the event log cannot be read");
            return unavailable("the event log cannot be read");
        }
    };
    let mut projections = Vec::new();
    for progress in &services.projections {
        let position = progress.position();
        let lag = log.count_after(position, MAX_LAG_COUNTED).await;
        projections.push(json!({
            "name": progress.name(),
            "position": position.global_position,
            "transactionId": position.transaction_id,
            "lag": lag.as_ref().ok(),
        }));
    }
    let backend = format!("{:?}", services.db.backend()).to_lowercase();
    (
        StatusCode::OK,
        json!({
            "status": "ok",
            "database": { "status": "reachable", "backend": backend },
            "log": { "head": head.global_position },
            "projections": projections,
        }),
    )
}

async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        telemetry::metrics().render(),
    )
}
