//! The GraphQL API through the router (no socket), on SQLite and a real PostgreSQL.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use cartie_api::auth::{AccessToken, Role, TokenKeys};
use cartie_store::Backend;
use chrono::Duration;
use http_body_util::BodyExt;
use secrecy::SecretString;
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

cartie_store::on_both_backends!(
    a_dealer_creates_prices_and_reads_back_a_listing,
    invalid_input_is_refused_naming_the_field_and_writes_nothing,
    unknown_ids_are_not_found,
    stale_versions_and_illegal_transitions_are_conflicts,
    a_workspace_can_neither_read_nor_change_another_workspaces_listing,
    a_retried_create_with_the_same_idempotency_key_creates_one_listing,
    an_update_keeps_absent_fields_and_clears_null_ones,
    deep_health_reports_each_projection_and_its_lag,
);

mod support;

use support::{code, field, Api};

impl Api {
    /// A fresh dealer workspace and its owner's access token.
    async fn token(&self) -> String {
        let slug = format!("dealer-{}", &Uuid::now_v7().simple().to_string()[20..]);
        self.dealer(&slug).await.token
    }

    async fn create(&self, token: &str, input: Value) -> Value {
        let response = self.gql(token, CREATE, json!({ "input": input })).await;
        assert!(response["errors"].is_null(), "{response}");
        response["data"]["createListing"].clone()
    }
}

const LISTING_FIELDS: &str = "id version status title description brand model year mileageKm fuel gearbox \
    engineVolumeCc body colour vin city price { amountMinor currency } photos { url telegramFileId } \
    priceHistory { price { amountMinor currency } version } createdAt updatedAt";

const LISTING_SCALARS: &str =
    "id version status title description brand model year mileageKm fuel \
    gearbox engineVolumeCc body colour vin city createdAt updatedAt";

const CREATE: &str = "mutation($input: CreateListingInput!) { createListing(input: $input) { \
    id version status title description brand model year mileageKm fuel gearbox engineVolumeCc body colour \
    vin city price { amountMinor currency } photos { url telegramFileId } \
    priceHistory { price { amountMinor currency } version } } }";

fn camry() -> Value {
    json!({
        "title": "Toyota Camry 2.5 Hybrid",
        "brand": "Toyota", "model": "Camry", "year": 2019, "mileageKm": 84000,
        "fuel": "HYBRID", "gearbox": "AUTOMATIC", "engineVolumeCc": 2487, "body": "SEDAN",
        "colour": "Graphite", "vin": "4t1b11hk5ku000001", "city": "Kyiv",
        "price": { "amountMinor": 2150000, "currency": "USD" },
        "photos": [{ "url": "https://cdn.example.com/camry/1.jpg" }, { "telegramFileId": "AgACAgIAAxkBAAIB" }],
        "status": "AVAILABLE"
    })
}

async fn a_dealer_creates_prices_and_reads_back_a_listing(backend: Backend) {
    let api = Api::new(backend).await;
    let token = api.token().await;
    let created = api.create(&token, camry()).await;
    assert_eq!(created["status"], "AVAILABLE");
    assert_eq!(
        created["vin"], "4T1B11HK5KU000001",
        "VIN normalised to upper case"
    );
    assert_eq!(created["version"], 1);
    assert_eq!(created["photos"][1]["telegramFileId"], "AgACAgIAAxkBAAIB");
    let id = created["id"].as_str().unwrap();

    let changed = api
        .gql(
            &token,
            "mutation($input: ChangeListingPriceInput!) { changeListingPrice(input: $input) { version price { amountMinor currency } } }",
            json!({ "input": { "id": id, "price": { "amountMinor": 1990000, "currency": "USD" } } }),
        )
        .await;
    assert_eq!(
        changed["data"]["changeListingPrice"]["version"], 2,
        "{changed}"
    );
    assert_eq!(
        changed["data"]["changeListingPrice"]["price"]["amountMinor"],
        1990000
    );

    let read = api
        .gql(
            &token,
            &format!("query($id: ID!) {{ listing(id: $id) {{ {LISTING_FIELDS} }} }}"),
            json!({ "id": id }),
        )
        .await;
    let listing = &read["data"]["listing"];
    assert_eq!(listing["title"], "Toyota Camry 2.5 Hybrid");
    assert_eq!(listing["engineVolumeCc"], 2487);
    let history: Vec<i64> = listing["priceHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["price"]["amountMinor"].as_i64().unwrap())
        .collect();
    assert_eq!(history, [2150000, 1990000]);

    let list = api
        .gql(
            &token,
            "{ listings(filter: { brand: \"TOYOTA\", priceCurrency: USD, priceMax: 2000000 }, sort: PRICE_ASC) { totalCount edges { node { id } } pageInfo { hasNextPage } } }",
            json!({}),
        )
        .await;
    assert_eq!(list["data"]["listings"]["totalCount"], 1, "{list}");
    assert_eq!(list["data"]["listings"]["edges"][0]["node"]["id"], id);
    // A list filter given as null or empty does not filter; one that names a status does.
    for (statuses, expected) in [("null", 1), ("[]", 1), ("[AVAILABLE]", 1), ("[SOLD]", 0)] {
        let query = format!(
            "{{ listings(filter: {{ statuses: {statuses}, fuels: null, gearboxes: [], bodies: null }}) {{ totalCount }} }}"
        );
        let list = api.gql(&token, &query, json!({})).await;
        assert_eq!(
            list["data"]["listings"]["totalCount"], expected,
            "{statuses}: {list}"
        );
    }
    api.shutdown().await;
}

async fn invalid_input_is_refused_naming_the_field_and_writes_nothing(backend: Backend) {
    let api = Api::new(backend).await;
    let token = api.token().await;
    let base = api.events().await;
    let with = |patch: Value| {
        let mut input = camry();
        for (key, value) in patch.as_object().unwrap() {
            input[key] = value.clone();
        }
        input
    };
    let cases = [
        (with(json!({ "year": 1899 })), "year"),
        (with(json!({ "vin": "4T1B11HK5KU00000I" })), "vin"),
        (with(json!({ "vin": "SHORT" })), "vin"),
        (
            with(json!({ "price": { "amountMinor": -1, "currency": "USD" } })),
            "price.amountMinor",
        ),
        (with(json!({ "mileageKm": -5 })), "mileageKm"),
        (with(json!({ "title": "   " })), "title"),
        (
            with(json!({ "photos": [{ "url": "ftp://example.com/a.jpg" }] })),
            "photos[0].url",
        ),
        (
            with(
                json!({ "photos": [{ "url": "https://a.example/1.jpg" }, { "url": "https://a.example/1.jpg" }] }),
            ),
            "photos[1]",
        ),
        (with(json!({ "status": "SOLD" })), "status"),
        (with(json!({ "price": null })), "price"),
    ];
    for (input, expected_field) in cases {
        let response = api.gql(&token, CREATE, json!({ "input": input })).await;
        assert_eq!(code(&response), "VALIDATION", "{response}");
        assert_eq!(field(&response), expected_field, "{response}");
    }
    // Values the schema itself refuses are VALIDATION errors too.
    let response = api
        .gql(
            &token,
            CREATE,
            json!({ "input": with(json!({ "price": { "amountMinor": 1, "currency": "XYZ" } })) }),
        )
        .await;
    assert_eq!(code(&response), "VALIDATION", "{response}");
    assert!(response["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("currency"));
    let response = api
        .gql(
            &token,
            "{ listings(first: 1000) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!((code(&response), field(&response)), ("VALIDATION", "first"));
    let response = api
        .gql(
            &token,
            "{ listings(filter: { priceMin: 1 }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(field(&response), "filter.priceCurrency");
    let response = api
        .gql(
            &token,
            "{ listings(after: \"garbage\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(field(&response), "after");
    assert_eq!(
        api.events().await - base,
        0,
        "no refused input wrote an event"
    );
    api.shutdown().await;
}

async fn unknown_ids_are_not_found(backend: Backend) {
    let api = Api::new(backend).await;
    let token = api.token().await;
    let base = api.events().await;
    let unknown = Uuid::now_v7().to_string();
    let response = api
        .gql(
            &token,
            "query($id: ID!) { listing(id: $id) { id } }",
            json!({ "id": unknown }),
        )
        .await;
    assert_eq!(code(&response), "NOT_FOUND");
    let response = api
        .gql(
            &token,
            "mutation($id: ID!) { changeListingStatus(input: { id: $id, status: SOLD }) { id } }",
            json!({ "id": unknown }),
        )
        .await;
    assert_eq!(code(&response), "NOT_FOUND");
    let response = api
        .gql(&token, "{ listing(id: \"not-a-uuid\") { id } }", json!({}))
        .await;
    assert_eq!((code(&response), field(&response)), ("VALIDATION", "id"));
    assert_eq!(api.events().await - base, 0);
    api.shutdown().await;
}

async fn stale_versions_and_illegal_transitions_are_conflicts(backend: Backend) {
    let api = Api::new(backend).await;
    let token = api.token().await;
    let base = api.events().await;
    let draft = api.create(&token, json!({ "title": "Draft car" })).await;
    let id = draft["id"].as_str().unwrap();
    let set_status = "mutation($input: ChangeListingStatusInput!) { changeListingStatus(input: $input) { status version } }";

    let response = api
        .gql(
            &token,
            set_status,
            json!({ "input": { "id": id, "status": "SOLD" } }),
        )
        .await;
    assert_eq!(
        code(&response),
        "CONFLICT",
        "DRAFT cannot become SOLD: {response}"
    );
    let response = api
        .gql(
            &token,
            set_status,
            json!({ "input": { "id": id, "status": "AVAILABLE" } }),
        )
        .await;
    assert_eq!(code(&response), "VALIDATION", "{response}");
    assert_eq!(
        response["errors"][0]["extensions"]["fields"],
        json!(["brand", "model", "year", "price"])
    );

    let update =
        "mutation($input: UpdateListingInput!) { updateListing(input: $input) { version } }";
    let response = api
        .gql(
            &token,
            update,
            json!({ "input": { "id": id, "expectedVersion": 1, "colour": "Red" } }),
        )
        .await;
    assert_eq!(
        response["data"]["updateListing"]["version"], 2,
        "{response}"
    );
    let response = api
        .gql(
            &token,
            update,
            json!({ "input": { "id": id, "expectedVersion": 1, "colour": "Blue" } }),
        )
        .await;
    assert_eq!(code(&response), "CONFLICT", "a stale version: {response}");
    assert_eq!(api.events().await - base, 2);
    api.shutdown().await;
}

async fn a_workspace_can_neither_read_nor_change_another_workspaces_listing(backend: Backend) {
    let api = Api::new(backend).await;
    let (a, b) = (api.token().await, api.token().await);
    let listing = api.create(&a, camry()).await;
    let id = listing["id"].as_str().unwrap();
    let events_before = api.events().await;

    let response = api
        .gql(
            &b,
            "query($id: ID!) { listing(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code(&response), "NOT_FOUND");
    let response = api
        .gql(
            &b,
            "{ listings { totalCount edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(response["data"]["listings"]["totalCount"], 0);
    for (mutation, input) in [
        (
            "changeListingPrice(input: { id: $id, price: { amountMinor: 1, currency: USD } })",
            "",
        ),
        (
            "changeListingStatus(input: { id: $id, status: ARCHIVED })",
            "",
        ),
        ("setListingPhotos(input: { id: $id, photos: [] })", ""),
        ("updateListing(input: { id: $id, title: \"Mine now\" })", ""),
    ] {
        let query = format!("mutation($id: ID!) {{ {mutation} {{ id }} }}{input}");
        let response = api.gql(&b, &query, json!({ "id": id })).await;
        assert_eq!(code(&response), "NOT_FOUND", "{mutation}: {response}");
    }
    assert_eq!(api.events().await, events_before, "nothing was written");
    let read = api
        .gql(
            &a,
            "query($id: ID!) { listing(id: $id) { title status price { amountMinor } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(read["data"]["listing"]["title"], "Toyota Camry 2.5 Hybrid");
    assert_eq!(read["data"]["listing"]["status"], "AVAILABLE");
    assert_eq!(read["data"]["listing"]["price"]["amountMinor"], 2150000);
    api.shutdown().await;
}

async fn a_retried_create_with_the_same_idempotency_key_creates_one_listing(backend: Backend) {
    let api = Api::new(backend).await;
    let token = api.token().await;
    let base = api.events().await;
    let input = json!({ "title": "Retried", "idempotencyKey": "form-7f3a" });
    let first = api.create(&token, input.clone()).await;
    let second = api.create(&token, input).await;
    assert_eq!(first["id"], second["id"]);
    assert_eq!(api.events().await - base, 1);
    // The same key in another workspace is another listing.
    let other = api
        .create(
            &api.token().await,
            json!({ "title": "Retried", "idempotencyKey": "form-7f3a" }),
        )
        .await;
    assert_ne!(other["id"], first["id"]);
    api.shutdown().await;
}

async fn an_update_keeps_absent_fields_and_clears_null_ones(backend: Backend) {
    let api = Api::new(backend).await;
    let token = api.token().await;
    let mut input = camry();
    input["status"] = json!("DRAFT");
    let id = api.create(&token, input).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let response = api
        .gql(
            &token,
            "mutation($input: UpdateListingInput!) { updateListing(input: $input) { vin colour city mileageKm } }",
            json!({ "input": { "id": id, "vin": null, "colour": "White", "mileageKm": 90000 } }),
        )
        .await;
    let listing = &response["data"]["updateListing"];
    assert_eq!(listing["vin"], Value::Null, "{response}");
    assert_eq!(listing["colour"], "White");
    assert_eq!(listing["city"], "Kyiv", "absent fields are kept");
    assert_eq!(listing["mileageKm"], 90000);
    let response = api
        .gql(
            &token,
            "mutation($id: ID!) { updateListing(input: { id: $id, title: null }) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!((code(&response), field(&response)), ("VALIDATION", "title"));
    api.shutdown().await;
}

/// `GET /health/deep` through the router: its status and body.
async fn deep_health(api: &Api) -> (StatusCode, Value) {
    let response = api
        .router
        .clone()
        .oneshot(Request::get("/health/deep").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

async fn deep_health_reports_each_projection_and_its_lag(backend: Backend) {
    let api = Api::new(backend).await;
    let token = api.token().await;
    api.create(&token, camry()).await;
    let (status, body) = deep_health(&api).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["database"]["status"], "reachable");
    let inventory = &body["projections"][0];
    assert_eq!(inventory["name"], "inventory");
    assert_eq!(inventory["lag"], 0, "{body}");
    assert!(inventory["position"].as_i64().unwrap() >= 1);

    // A database that answers but whose log cannot be read is not healthy.
    let db = &api.test.db;
    cartie_store::on_pool!(db, pool => {
        sqlx::query("ALTER TABLE events RENAME TO events_elsewhere")
            .execute(pool)
            .await
            .unwrap();
    });
    let (status, body) = deep_health(&api).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_eq!(body["database"], "the event log cannot be read", "{body}");
    api.shutdown().await;
}

#[tokio::test]
async fn malformed_tampered_foreign_and_expired_tokens_are_unauthenticated() {
    let api = Api::new(Backend::Sqlite).await;
    let dealer = api.dealer("token-checks").await;
    let valid = dealer.token.clone();
    let claims = AccessToken {
        workspace_id: dealer.id,
        user_id: dealer.owner,
        role: Role::Owner,
        session_id: Uuid::now_v7(),
    };
    let (expired, _) = api.keys.issue(claims, Duration::hours(-1)).unwrap();
    let (foreign, _) = TokenKeys::new(&SecretString::from("another-secret-".repeat(4)))
        .issue(claims, Duration::hours(1))
        .unwrap();
    let tampered = format!("{}x", &valid[..valid.len() - 1]);
    let query = || Body::from(json!({ "query": "{ listings { totalCount } }" }).to_string());
    for authorization in [
        "Token abc".to_string(),
        format!("Bearer {expired}"),
        format!("Bearer {foreign}"),
        format!("Bearer {tampered}"),
        "Bearer cartie_at_0000000000000000000000000000000a_forged".to_string(),
    ] {
        let (status, body) = api.post(Some(&authorization), query()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{authorization:?}");
        assert_eq!(code(&body), "UNAUTHENTICATED");
    }
    // Without a token the request runs anonymously: only public operations answer. The
    // error points at the refused field (lines and columns count from 1).
    let (status, body) = api.post(None, query()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(code(&body), "UNAUTHENTICATED");
    assert!(body["data"].is_null(), "{body}");
    assert_eq!(
        body["errors"][0]["locations"],
        json!([{ "line": 1, "column": 3 }]),
        "{body}"
    );
    let (status, body) = api.post(Some(&format!("Bearer {valid}")), query()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["errors"].is_null(), "{body}");
    api.shutdown().await;
}

#[tokio::test]
async fn oversized_bodies_and_overdeep_or_overcomplex_queries_are_refused_before_execution() {
    let api = Api::new(Backend::Sqlite).await;
    let token = api.token().await;
    let base = api.events().await;
    let huge = json!({ "query": "mutation { createListing(input: { title: \"big\" }) { id } }", "variables": { "pad": "x".repeat(1024 * 1024) } }).to_string();
    // Streamed (no Content-Length) and announced: both 413.
    let (status, _) = api
        .post(Some(&format!("Bearer {token}")), Body::from(huge.clone()))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .header("content-length", huge.len())
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(huge))
        .unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let (status, body) = api
        .post(Some(&format!("Bearer {token}")), Body::from("{not json"))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "VALIDATION")
    );

    let nested = (0..3).fold(String::from("__typename"), |inner, _| {
        format!("__schema {{ types {{ fields {{ type {{ ofType {{ {inner} }} }} }} }} }}")
    });
    let response = api.gql(&token, &format!("{{ {nested} }}"), json!({})).await;
    assert_eq!(code(&response), "VALIDATION", "{response}");
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("nested"),
        "{response}"
    );

    // Values nested thousands deep (a few KiB of text, in an argument, a default value or a
    // directive, with or without a token) are refused before the parser recurses into them
    // (it would overflow its stack and abort the server); the server answers after them.
    let deep = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
    let objects = format!("{}1{}", "{a: ".repeat(2_000), "}".repeat(2_000));
    for query in [
        format!("{{ listing(id: {}) {{ id }} }}", deep(2_000)),
        format!("query($f: ListingFilterInput = {objects}) {{ __typename }}"),
        format!("{{ __typename @skip(if: {}) }}", deep(5_000)),
    ] {
        for caller in [Some(format!("Bearer {token}")), None] {
            let body = json!({ "query": query }).to_string();
            let (status, body) = api.post(caller.as_deref(), Body::from(body)).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(code(&body), "VALIDATION", "{body}");
            assert!(
                body["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("nested more than 64 levels"),
                "{body}"
            );
        }
    }
    let alive = api
        .gql(&token, "{ listings { totalCount } }", json!({}))
        .await;
    assert!(alive["errors"].is_null(), "{alive}");

    // A NUL character, in a literal or in a variable, is refused before anything runs (no
    // text Cartie keeps or looks up can hold one; PostgreSQL would refuse it).
    for (query, variables) in [
        (
            r#"{ listings(filter: { brand: "BMW\u0000" }) { totalCount } }"#,
            json!({}),
        ),
        (
            "query($f: ListingFilterInput) { listings(filter: $f) { totalCount } }",
            json!({ "f": { "text": "x\u{0}" } }),
        ),
        (
            "mutation($input: CreateListingInput!) { createListing(input: $input) { id } }",
            json!({ "input": { "title": "Golf", "colour": "bl\u{0}ue" } }),
        ),
    ] {
        let response = api.gql(&token, query, variables).await;
        assert_eq!(code(&response), "VALIDATION", "{response}");
        assert!(
            response["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("NUL"),
            "{response}"
        );
    }

    // 30 pages of 100 listings each is over the complexity budget; the mutation alongside
    // never runs.
    let pages = (0..30)
        .map(|i| format!("l{i}: listings(first: 100) {{ edges {{ node {{ id title brand }} }} }}"))
        .collect::<Vec<_>>()
        .join(" ");
    let response = api.gql(&token, &format!("{{ {pages} }}"), json!({})).await;
    assert_eq!(code(&response), "VALIDATION", "{response}");
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("complex"),
        "{response}"
    );
    // Over the budget (300 creates of 19 fields) within one mutation operation: none of
    // its creates may run.
    let creates = (0..300)
        .map(|i| {
            format!("c{i}: createListing(input: {{ title: \"bulk {i}\" }}) {{ {LISTING_SCALARS} }}")
        })
        .collect::<Vec<_>>()
        .join(" ");
    let response = api
        .gql(&token, &format!("mutation {{ {creates} }}"), json!({}))
        .await;
    assert_eq!(code(&response), "VALIDATION", "{response}");
    assert_eq!(api.events().await - base, 0, "nothing refused was executed");
    api.shutdown().await;
}

#[tokio::test]
async fn graphiql_is_served_on_get() {
    let api = Api::new(Backend::Sqlite).await;
    let response = api
        .router
        .clone()
        .oneshot(Request::get("/graphql").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(html.to_lowercase().contains("graphiql"));
    api.shutdown().await;
}

/// docs/schema.graphql is what clients read; it must be the schema the server serves.
#[test]
fn the_committed_sdl_is_the_served_schema() {
    let committed = include_str!("../../docs/schema.graphql");
    assert!(
        committed == cartie_api::graphql::sdl(),
        "docs/schema.graphql is out of date: run `cargo run -- schema > docs/schema.graphql`"
    );
}
