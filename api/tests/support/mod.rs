//! The API through its router (no socket), on a real database, with real workspaces and
//! members provisioned through the same commands the API uses.
#![allow(dead_code)] // Each test binary uses a part.

pub mod fake_telegram;
pub mod ws;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::Router;
use cartie_api::accounts::{self, Throttle};
use cartie_api::auth::TokenKeys;
use cartie_api::secrets::SecretKey;
use cartie_api::telegram::TelegramSettings;
use cartie_api::{App, Keys, Options};
use cartie_domain::member::{Email, Role};
use cartie_domain::values::{Currency, Text};
use cartie_domain::workspace::{Slug, TimeZone};
use cartie_domain::{Actor, CommandContext, UserId, WorkspaceId};
use cartie_store::testing::TestDatabase;
use cartie_store::{Backend, EventLog};
use http_body_util::BodyExt;
use secrecy::SecretString;
use serde_json::{json, Value};
use tower::ServiceExt;

pub const PASSWORD: &str = "violet-anchor-tundra-91";

pub struct Api {
    pub router: Router,
    pub app: Option<App>,
    pub keys: TokenKeys,
    pub test: TestDatabase,
    /// Set when the Telegram workers run (see [`Api::with_telegram`]).
    pub telegram: Option<TelegramSettings>,
}

pub fn test_keys() -> Keys {
    Keys {
        tokens: TokenKeys::new(&SecretString::from("test-secret-".repeat(4))),
        secrets: SecretKey::from_hex(&SecretString::from("ab".repeat(32)), "test").unwrap(),
    }
}

/// A workspace with an owner signed in.
pub struct Dealer {
    pub id: WorkspaceId,
    pub slug: String,
    pub owner: UserId,
    pub owner_email: String,
    pub token: String,
}

impl Api {
    pub async fn new(backend: Backend) -> Self {
        Self::with_throttle(backend, Throttle::default()).await
    }

    pub async fn with_throttle(backend: Backend, throttle: Throttle) -> Self {
        let test = TestDatabase::new(backend).await;
        let keys = TokenKeys::new(&SecretString::from("test-secret-".repeat(4)));
        let secrets = SecretKey::from_hex(&SecretString::from("ab".repeat(32)), "test").unwrap();
        let app = App::start_with(
            test.db.clone(),
            Keys {
                tokens: keys.clone(),
                secrets,
            },
            throttle,
        );
        Self {
            router: app.router(),
            app: Some(app),
            keys,
            test,
            telegram: None,
        }
    }

    /// The platform with its Telegram workers (long polling, delivery) talking to the Bot
    /// API at `settings.api_url` (a [`fake_telegram::FakeTelegram`]).
    pub async fn with_telegram(backend: Backend, settings: TelegramSettings) -> Self {
        let test = TestDatabase::new(backend).await;
        let keys = test_keys();
        let app = Self::start_telegram(&test, keys.clone(), settings.clone());
        Self {
            router: app.router(),
            app: Some(app),
            keys: keys.tokens,
            test,
            telegram: Some(settings),
        }
    }

    fn start_telegram(test: &TestDatabase, keys: Keys, settings: TelegramSettings) -> App {
        App::start_with_options(
            test.db.clone(),
            keys,
            Options {
                telegram: settings,
                telegram_workers: true,
                ..Options::default()
            },
        )
    }

    /// Stops the platform as a crash would leave it (workers and sends cut off) and starts
    /// it again on the same database.
    pub async fn restart(&mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
        let settings = self.telegram.clone().expect("restart needs with_telegram");
        let app = Self::start_telegram(&self.test, test_keys(), settings);
        self.router = app.router();
        self.app = Some(app);
    }

    pub fn services(&self) -> &cartie_api::app::Services {
        &self.app.as_ref().unwrap().services
    }

    /// A new workspace with the given slug and an owner who has a password, signed in.
    pub async fn dealer(&self, slug: &str) -> Dealer {
        let slug_value = Slug::parse("slug", slug).unwrap();
        let id = WorkspaceId::for_slug(&slug_value);
        let system = CommandContext::new(id, Actor::System, chrono::Utc::now());
        accounts::create_workspace(
            self.services(),
            system,
            Text::parse("name", &format!("{slug} dealer"), 100).unwrap(),
            slug_value,
            Currency::USD,
            TimeZone::parse("tz", "Europe/Kyiv").unwrap(),
        )
        .await
        .unwrap();
        let email = format!("owner@{slug}.example");
        let owner = self.person(id, &email, Role::Owner).await;
        let token = self.session(owner, id).await;
        Dealer {
            id,
            slug: slug.to_string(),
            owner,
            owner_email: email,
            token,
        }
    }

    /// Adds a person with a password to a workspace.
    pub async fn person(&self, workspace: WorkspaceId, email: &str, role: Role) -> UserId {
        let context = CommandContext::new(workspace, Actor::System, chrono::Utc::now());
        let invitation = accounts::invite_member(
            self.services(),
            context.clone(),
            Email::parse("email", email).unwrap(),
            Text::parse("name", "Test Person", 100).unwrap(),
            role,
        )
        .await
        .unwrap();
        if invitation.token.is_some() {
            accounts::set_password(
                self.services(),
                context,
                invitation.user_id,
                email,
                "Test Person",
                "password",
                SecretString::from(PASSWORD.to_string()),
            )
            .await
            .unwrap();
        }
        invitation.user_id
    }

    /// An access token for a person in a workspace (a fresh session).
    pub async fn session(&self, user: UserId, workspace: WorkspaceId) -> String {
        accounts::open_session(self.services(), user, workspace)
            .await
            .unwrap()
            .access_token()
            .to_string()
    }

    pub async fn post(&self, authorization: Option<&str>, body: Body) -> (StatusCode, Value) {
        self.post_from(authorization, body, None).await
    }

    /// Posts to /graphql as if from `client`.
    pub async fn post_from(
        &self,
        authorization: Option<&str>,
        body: Body,
        client: Option<SocketAddr>,
    ) -> (StatusCode, Value) {
        let mut request = Request::post("/graphql").header("content-type", "application/json");
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let mut request = request.body(body).unwrap();
        if let Some(client) = client {
            request.extensions_mut().insert(ConnectInfo(client));
        }
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A GraphQL request with a bearer token; answers the HTTP status too.
    pub async fn request(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> (StatusCode, Value) {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let authorization = token.map(|t| format!("Bearer {t}"));
        self.post(authorization.as_deref(), Body::from(body)).await
    }

    pub async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        let (status, value) = self.request(Some(token), query, variables).await;
        assert_eq!(status, StatusCode::OK, "{value}");
        value
    }

    pub async fn anonymous(&self, query: &str, variables: Value) -> Value {
        let (status, value) = self.request(None, query, variables).await;
        assert_eq!(status, StatusCode::OK, "{value}");
        value
    }

    pub async fn events(&self) -> i64 {
        EventLog::new(self.test.db.clone())
            .event_count()
            .await
            .unwrap()
    }

    pub async fn shutdown(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
    }
}

pub fn code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {response}"))
}

pub fn field(response: &Value) -> &str {
    response["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or_else(|| panic!("no field in {response}"))
}

/// The response's data, asserting there was no error.
pub fn ok(response: Value) -> Value {
    assert!(response["errors"].is_null(), "{response}");
    response["data"].clone()
}
