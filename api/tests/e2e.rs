//! End to end over real HTTP with the `cartie` binary: seed the platform with the CLI
//! (twice: the second run adds nothing), serve, sign in as the platform administrator,
//! create a dealer workspace, accept its owner's invitation, create and price a listing,
//! read it back, stop the server, rebuild every projection with `cartie replay --all`,
//! restart the server, read the listing again with the same token.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cartie_store::testing::TestDatabase;
use cartie_store::Backend;
use serde_json::{json, Value};

struct Server {
    child: Child,
    base: String,
}

impl Server {
    async fn start(data_dir: &std::path::Path, database_url: &str) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_cartie"))
            .arg("serve")
            .env("CARTIE_DATA_DIR", data_dir)
            .env("CARTIE_DATABASE_URL", database_url)
            .env("CARTIE_BIND", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start cartie serve");
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = reqwest::get(format!("{}/health", server.base)).await {
                if response.status().is_success() {
                    return server;
                }
            }
            assert!(Instant::now() < deadline, "the server did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server the way an operator would (SIGTERM), waiting for a clean exit.
    fn stop(mut self) {
        #[cfg(unix)]
        {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = self.child.try_wait() {
                    assert!(status.success(), "cartie exited with {status}");
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        panic!("cartie did not stop on SIGTERM");
    }

    async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        self.send(Some(token), query, variables).await
    }

    async fn gql_anonymous(&self, query: &str, variables: Value) -> Value {
        self.send(None, query, variables).await
    }

    async fn send(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = self.post(token, query, variables).await;
        assert!(body["errors"].is_null(), "{body}");
        body["data"].clone()
    }

    /// The whole response, errors included.
    async fn post(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = reqwest::Client::new()
            .post(format!("{}/graphql", self.base))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        response.json().await.unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

const ADMIN_EMAIL: &str = "admin@platform.example";
const ADMIN_PASSWORD: &str = "granite-lantern-meadow-42";

/// Runs the `cartie` CLI with `args` against the database; answers its output once it has
/// succeeded.
fn cartie(
    args: &[&str],
    data_dir: &std::path::Path,
    database_url: &str,
    env: &[(&str, &str)],
) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_cartie"))
        .args(args)
        .env("CARTIE_DATA_DIR", data_dir)
        .env("CARTIE_DATABASE_URL", database_url)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap_or_else(|error| panic!("run cartie {args:?}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs `cartie seed`; answers its output.
fn seed(data_dir: &std::path::Path, database_url: &str) -> String {
    let stdout = cartie(
        &["seed"],
        data_dir,
        database_url,
        &[
            ("CARTIE_ADMIN_EMAIL", ADMIN_EMAIL),
            ("CARTIE_ADMIN_PASSWORD", ADMIN_PASSWORD),
        ],
    );
    assert!(
        !stdout.contains(ADMIN_PASSWORD),
        "the password is never printed"
    );
    stdout
}

/// Signs in as the platform administrator, creates a dealer workspace, and answers the
/// access token of its owner after they accept the invitation.
async fn dealer_owner_token(server: &Server) -> String {
    let admin = server
        .gql_anonymous(
            "mutation($email: String!, $password: String!) { signIn(email: $email, password: $password) { accessToken role workspace { slug } } }",
            json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }),
        )
        .await;
    assert_eq!(admin["signIn"]["workspace"]["slug"], "platform");
    let admin_token = admin["signIn"]["accessToken"].as_str().unwrap().to_string();
    let created = server
        .gql(
            &admin_token,
            "mutation($input: CreateWorkspaceInput!) { createWorkspace(input: $input) { workspace { slug } owner { invitationToken member { email role } } } }",
            json!({ "input": {
                "name": "Kyiv Motors", "slug": "kyiv-motors", "defaultCurrency": "EUR",
                "timeZone": "Europe/Kyiv", "ownerEmail": "owner@kyiv-motors.example", "ownerName": "Oksana"
            } }),
        )
        .await;
    assert_eq!(
        created["createWorkspace"]["owner"]["member"]["role"],
        "OWNER"
    );
    let invitation = created["createWorkspace"]["owner"]["invitationToken"]
        .as_str()
        .unwrap()
        .to_string();
    let accepted = server
        .gql_anonymous(
            "mutation($token: String!) { acceptInvitation(token: $token, password: \"cobalt-harbour-violin-17\") { accessToken role workspace { slug } } }",
            json!({ "token": invitation }),
        )
        .await;
    assert_eq!(
        accepted["acceptInvitation"]["workspace"]["slug"],
        "kyiv-motors"
    );
    assert_eq!(accepted["acceptInvitation"]["role"], "OWNER");
    accepted["acceptInvitation"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn a_listing_survives_a_restart(backend: Backend) {
    let data_dir = tempfile::tempdir().unwrap();
    // For PostgreSQL, a fresh database on the test server; SQLite is the embedded default.
    let postgres = match backend {
        Backend::Postgres => Some(TestDatabase::postgres().await),
        Backend::Sqlite => None,
    };
    let database_url = match &postgres {
        Some(test) => test.url.clone(),
        None => format!("sqlite:{}", data_dir.path().join("cartie.db").display()),
    };
    let first = seed(data_dir.path(), &database_url);
    assert!(first.contains("workspace platform: created"), "{first}");
    let second = seed(data_dir.path(), &database_url);
    assert!(second.contains("0 new events"), "{second}");

    let server = Server::start(data_dir.path(), &database_url).await;
    let token = dealer_owner_token(&server).await;
    let created = server
        .gql(
            &token,
            "mutation($input: CreateListingInput!) { createListing(input: $input) { id status } }",
            json!({ "input": {
                "title": "BMW 320d Touring", "brand": "BMW", "model": "320d", "year": 2018,
                "price": { "amountMinor": 1_650_000, "currency": "EUR" }, "status": "AVAILABLE"
            } }),
        )
        .await;
    let id = created["createListing"]["id"].as_str().unwrap().to_string();
    server
        .gql(
            &token,
            "mutation($id: ID!) { changeListingPrice(input: { id: $id, price: { amountMinor: 1590000, currency: EUR } }) { id } }",
            json!({ "id": id }),
        )
        .await;
    let read = "query($id: ID!) { listing(id: $id) { title status price { amountMinor currency } priceHistory { price { amountMinor } } } }";
    let before = server.gql(&token, read, json!({ "id": id })).await;
    assert_eq!(before["listing"]["price"]["amountMinor"], 1_590_000);
    assert_eq!(
        before["listing"]["priceHistory"].as_array().unwrap().len(),
        2
    );
    server.stop();

    // Every projection rebuilt from the log by the CLI while the server is down.
    let replayed = cartie(&["replay", "--all"], data_dir.path(), &database_url, &[]);
    assert!(
        replayed.contains("inventory: rebuilt up to position"),
        "{replayed}"
    );

    let restarted = Server::start(data_dir.path(), &database_url).await;
    let after = restarted.gql(&token, read, json!({ "id": id })).await;
    assert_eq!(
        after, before,
        "the same listing after a replay and a restart"
    );
    let listings = restarted
        .gql(&token, "{ listings { totalCount } }", json!({}))
        .await;
    assert_eq!(listings["listings"]["totalCount"], 1);

    // Tokens printed by the CLI, for the workspace named by slug or by id, read it too;
    // one of another workspace does not.
    let workspace = restarted
        .gql(&token, "{ workspace { id } }", json!({}))
        .await["workspace"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let by_slug = cartie(
        &[
            "token",
            "issue",
            "--workspace",
            "kyiv-motors",
            "--role",
            "admin",
        ],
        data_dir.path(),
        &database_url,
        &[],
    );
    let by_id = cartie(
        &[
            "token",
            "create",
            "--workspace",
            &workspace,
            "--name",
            "stock sync",
        ],
        data_dir.path(),
        &database_url,
        &[],
    );
    for printed in [&by_slug, &by_id] {
        let cli_token = printed.trim();
        assert!(!cli_token.is_empty() && !cli_token.contains(char::is_whitespace));
        let read_back = restarted.gql(cli_token, read, json!({ "id": id })).await;
        assert_eq!(read_back, before, "read with a token from the CLI");
    }
    let platform = cartie(
        &[
            "token",
            "issue",
            "--workspace",
            "platform",
            "--role",
            "admin",
        ],
        data_dir.path(),
        &database_url,
        &[],
    );
    let foreign = restarted
        .post(Some(platform.trim()), read, json!({ "id": id }))
        .await;
    assert_eq!(
        foreign["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{foreign}"
    );
    restarted.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_survives_a_restart_on_sqlite() {
    a_listing_survives_a_restart(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_survives_a_restart_on_postgres() {
    a_listing_survives_a_restart(Backend::Postgres).await;
}
