//! B2B requests and the partner network through the GraphQL API: partners' isolation,
//! proposal links, matching against the inventory, the public intake and the request
//! list's filters and pages.

mod support;

use std::time::{Duration, Instant};

use cartie_api::accounts::Throttle;
use cartie_store::Backend;
use serde_json::{json, Value};
use support::ws::{connect, next, subscribe};
use support::{code, field, ok, Api, Dealer};

cartie_store::on_both_backends!(
    a_partner_sees_only_requests_addressed_to_it_and_its_own_variants,
    a_proposal_link_shows_the_shortlist_until_revoked,
    matching_returns_exactly_the_available_listings_inside_the_needs_cheapest_first,
    public_intake_creates_a_lead_and_a_draft_and_is_throttled_per_client,
    bad_needs_and_changes_after_close_are_refused,
    the_dealer_sees_a_partners_variant_arrive_over_a_websocket_within_a_second,
    the_request_list_filters_and_pages_newest_first,
);

async fn partner_with_token(api: &Api, dealer: &Dealer, name: &str) -> (String, String) {
    let id = ok(api
        .gql(
            &dealer.token,
            "mutation($name: String!) { registerPartner(input: { name: $name, city: \"Lviv\", \
             contacts: [{ name: \"Taras\", phone: \"+380671234567\" }] }) { id name active } }",
            json!({ "name": name }),
        )
        .await)["registerPartner"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let token = ok(api
        .gql(
            &dealer.token,
            "mutation($id: ID!) { createPartnerToken(partnerId: $id, name: \"offers\") { token partner { tokens { name } } } }",
            json!({ "id": id }),
        )
        .await)["createPartnerToken"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    (id, token)
}

async fn draft(api: &Api, dealer: &Dealer, needs: Value) -> String {
    ok(api
        .gql(
            &dealer.token,
            "mutation($needs: NeedsInput!) { draftRequest(input: { needs: $needs, client: { name: \"Olha\", phone: \"0671234567\" } }) { id status } }",
            json!({ "needs": needs }),
        )
        .await)["draftRequest"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

const OFFER: &str = "mutation($r: ID!, $amount: Int!) { offerVariant(input: { requestId: $r, title: \"Camry 2019\", \
    brand: \"Toyota\", model: \"Camry\", year: 2019, price: { amountMinor: $amount, currency: USD } }) { id status source } }";

async fn a_partner_sees_only_requests_addressed_to_it_and_its_own_variants(backend: Backend) {
    let api = Api::new(backend).await;
    let dealer = api.dealer("kyiv-motors").await;
    let (p1, t1) = partner_with_token(&api, &dealer, "Lviv Auto").await;
    let (p2, t2) = partner_with_token(&api, &dealer, "Odesa Cars").await;
    let addressed = draft(&api, &dealer, json!({ "brand": "Toyota" })).await;
    let unpublished = draft(&api, &dealer, json!({ "brand": "BMW" })).await;
    // Named partners and all of them at once is a contradiction, refused.
    let both = api
        .gql(
            &dealer.token,
            "mutation($id: ID!, $p: ID!) { publishRequest(input: { id: $id, partnerIds: [$p], allPartners: true }) { status } }",
            json!({ "id": addressed, "p": p1 }),
        )
        .await;
    assert_eq!(
        (code(&both), field(&both)),
        ("VALIDATION", "allPartners"),
        "{both}"
    );
    ok(api
        .gql(
            &dealer.token,
            "mutation($id: ID!, $p: ID!) { publishRequest(input: { id: $id, partnerIds: [$p] }) { status partnerIds } }",
            json!({ "id": addressed, "p": p1 }),
        )
        .await);

    // The addressed partner sees the request, without the client.
    let seen = ok(api
        .gql(
            &t1,
            "{ partnerRequests { nodes { id status needs { brand } } } }",
            json!({}),
        )
        .await);
    let nodes = seen["partnerRequests"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{seen}");
    assert_eq!(nodes[0]["id"], addressed);
    let client = api
        .gql(
            &t1,
            "query($id: ID!) { partnerRequest(id: $id) { client { name } } }",
            json!({ "id": addressed }),
        )
        .await;
    assert!(
        client["errors"].is_array(),
        "a partner's view has no client: {client}"
    );

    // The other partner sees nothing and cannot offer.
    let none = ok(api
        .gql(&t2, "{ partnerRequests { nodes { id } } }", json!({}))
        .await);
    assert_eq!(none["partnerRequests"]["nodes"], json!([]));
    let refused = api
        .gql(&t2, OFFER, json!({ "r": addressed, "amount": 1_800_000 }))
        .await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    let hidden = api
        .gql(
            &t2,
            "query($id: ID!) { partnerRequest(id: $id) { id } }",
            json!({ "id": addressed }),
        )
        .await;
    assert_eq!(code(&hidden), "NOT_FOUND");
    // Nobody offers on an unpublished request, nor sees it.
    let draft_offer = api
        .gql(&t1, OFFER, json!({ "r": unpublished, "amount": 1 }))
        .await;
    assert_eq!(code(&draft_offer), "FORBIDDEN");
    let draft_seen = api
        .gql(
            &t1,
            "query($id: ID!) { partnerRequest(id: $id) { id } }",
            json!({ "id": unpublished }),
        )
        .await;
    assert_eq!(code(&draft_seen), "NOT_FOUND");

    // The addressed partner offers; the other partner's view never shows it.
    let offered = ok(api
        .gql(&t1, OFFER, json!({ "r": addressed, "amount": 1_800_000 }))
        .await);
    assert_eq!(offered["offerVariant"]["source"], "PARTNER");
    let second = ok(api
        .gql(&t1, OFFER, json!({ "r": addressed, "amount": 1_700_000 }))
        .await);
    let mine = ok(api
        .gql(
            &t1,
            "query($id: ID!) { partnerRequest(id: $id) { myVariants { id } } }",
            json!({ "id": addressed }),
        )
        .await);
    assert_eq!(
        mine["partnerRequest"]["myVariants"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // A partner's token does nothing else in the workspace.
    for query in [
        "{ requests { totalCount } }",
        "{ listings { totalCount } }",
        "{ partners { id } }",
    ] {
        let response = api.gql(&t1, query, json!({})).await;
        assert_eq!(code(&response), "FORBIDDEN", "{query}: {response}");
    }
    let shortlist = api
        .gql(
            &t1,
            "mutation($v: ID!) { shortlistVariant(variantId: $v) { id } }",
            json!({ "v": second["offerVariant"]["id"] }),
        )
        .await;
    assert_eq!(code(&shortlist), "FORBIDDEN");

    // The dealer sees both offers, counted, with the best one.
    let listed = ok(api
        .gql(
            &dealer.token,
            "{ requests(filter: { statuses: [PUBLISHED] }) { totalCount nodes { id variantCount bestOffer { amountMinor currency } } } }",
            json!({}),
        )
        .await);
    assert_eq!(listed["requests"]["totalCount"], 1);
    assert_eq!(listed["requests"]["nodes"][0]["variantCount"], 2);
    assert_eq!(
        listed["requests"]["nodes"][0]["bestOffer"]["amountMinor"],
        1_700_000
    );

    // A partner's token is revoked like any other API token, and answers as a partner's.
    let token_id = ok(api
        .gql(
            &dealer.token,
            "query($id: ID!) { partner(id: $id) { tokens { id revokedAt } } }",
            json!({ "id": p2 }),
        )
        .await)["partner"]["tokens"][0]["id"]
        .clone();
    let revoked = ok(api
        .gql(
            &dealer.token,
            "mutation($id: ID!) { revokeApiToken(id: $id) { id role partnerId revokedAt } }",
            json!({ "id": token_id }),
        )
        .await)["revokeApiToken"]
        .clone();
    assert_eq!(revoked["role"], "PARTNER", "{revoked}");
    assert_eq!(revoked["partnerId"], p2, "{revoked}");
    assert!(revoked["revokedAt"].is_string(), "{revoked}");
    let body = json!({ "query": "{ partnerRequests { nodes { id } } }" }).to_string();
    let (status, _) = api
        .post(Some(&format!("Bearer {t2}")), axum::body::Body::from(body))
        .await;
    assert_eq!(status, 401);

    // A deactivated partner's token stops working.
    ok(api
        .gql(
            &dealer.token,
            "mutation($id: ID!) { deactivatePartner(id: $id) { active } }",
            json!({ "id": p1 }),
        )
        .await);
    let body = json!({ "query": "{ partnerRequests { nodes { id } } }" }).to_string();
    let (status, after) = api
        .post(Some(&format!("Bearer {t1}")), axum::body::Body::from(body))
        .await;
    assert_eq!(status, 401);
    assert_eq!(code(&after), "UNAUTHENTICATED", "{after}");
    api.shutdown().await;
}

async fn a_proposal_link_shows_the_shortlist_until_revoked(backend: Backend) {
    let api = Api::new(backend).await;
    let dealer = api.dealer("lviv-cars").await;
    let request = draft(&api, &dealer, json!({ "brand": "Toyota" })).await;
    let listing = ok(api
        .gql(
            &dealer.token,
            "mutation { createListing(input: { title: \"Toyota RAV4 2020\", brand: \"Toyota\", model: \"RAV4\", year: 2020, \
             price: { amountMinor: 2500000, currency: USD } }) { id } }",
            json!({}),
        )
        .await)["createListing"]["id"]
        .clone();
    let mut variants = Vec::new();
    for _ in 0..2 {
        let v = ok(api
            .gql(
                &dealer.token,
                "mutation($r: ID!, $l: ID!) { offerListing(input: { requestId: $r, listingId: $l }) { id price { amountMinor } title } }",
                json!({ "r": request, "l": listing }),
            )
            .await);
        assert_eq!(v["offerListing"]["price"]["amountMinor"], 2_500_000);
        variants.push(v["offerListing"]["id"].clone());
    }
    // Nothing shortlisted: nothing to propose.
    let early = api
        .gql(
            &dealer.token,
            "mutation($r: ID!) { shareProposal(requestId: $r) { token } }",
            json!({ "r": request }),
        )
        .await;
    assert_eq!(code(&early), "CONFLICT");
    ok(api
        .gql(
            &dealer.token,
            "mutation($v: ID!) { shortlistVariant(variantId: $v) { status } }",
            json!({ "v": variants[0] }),
        )
        .await);
    let shared = ok(api
        .gql(
            &dealer.token,
            "mutation($r: ID!) { shareProposal(requestId: $r) { token proposal { id } } }",
            json!({ "r": request }),
        )
        .await);
    let token = shared["shareProposal"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let proposal_id = shared["shareProposal"]["proposal"]["id"].clone();
    let public = ok(api
        .anonymous("query($t: String!) { proposal(token: $t) { dealer cars { title price { amountMinor } accepted } } }", json!({ "t": token }))
        .await);
    assert_eq!(public["proposal"]["dealer"], "lviv-cars dealer");
    assert_eq!(
        public["proposal"]["cars"].as_array().unwrap().len(),
        1,
        "only the shortlisted car: {public}"
    );
    // A token with a wrong secret opens nothing.
    let forged = format!("{}x", &token[..token.len() - 1]);
    let wrong = api
        .anonymous(
            "query($t: String!) { proposal(token: $t) { dealer } }",
            json!({ "t": forged }),
        )
        .await;
    assert_eq!(code(&wrong), "NOT_FOUND");
    ok(api
        .gql(
            &dealer.token,
            "mutation($r: ID!, $p: ID!) { revokeProposal(requestId: $r, proposalId: $p) { proposals { revokedAt } } }",
            json!({ "r": request, "p": proposal_id }),
        )
        .await);
    let revoked = api
        .anonymous(
            "query($t: String!) { proposal(token: $t) { dealer } }",
            json!({ "t": token }),
        )
        .await;
    assert_eq!(code(&revoked), "NOT_FOUND", "{revoked}");
    api.shutdown().await;
}

async fn matching_returns_exactly_the_available_listings_inside_the_needs_cheapest_first(
    backend: Backend,
) {
    let api = Api::new(backend).await;
    let dealer = api.dealer("odesa-auto").await;
    // (brand, model, year, mileage, price USD, status) and whether the request matches it.
    let cars = [
        (
            "Toyota",
            "Camry",
            2018,
            90_000,
            1_800_000,
            "AVAILABLE",
            true,
        ),
        (
            "toyota",
            "camry",
            2020,
            40_000,
            2_000_000,
            "AVAILABLE",
            true,
        ),
        (
            "Toyota",
            "Camry",
            2016,
            120_000,
            1_500_000,
            "AVAILABLE",
            true,
        ),
        (
            "Toyota",
            "Camry",
            2015,
            90_000,
            1_400_000,
            "AVAILABLE",
            false,
        ), // too old
        (
            "Toyota",
            "Camry",
            2019,
            160_000,
            1_600_000,
            "AVAILABLE",
            false,
        ), // too far driven
        (
            "Toyota",
            "Camry",
            2019,
            50_000,
            2_000_001,
            "AVAILABLE",
            false,
        ), // over budget
        (
            "Toyota",
            "Corolla",
            2019,
            50_000,
            1_700_000,
            "AVAILABLE",
            false,
        ), // another model
        (
            "Toyota", "Camry", 2019, 50_000, 1_700_000, "RESERVED", false,
        ), // not available
    ];
    let mut expected = Vec::new();
    for (brand, model, year, km, price, status, matches) in cars {
        let id = ok(api
            .gql(
                &dealer.token,
                "mutation($b: String!, $m: String!, $y: Int!, $km: Int!, $p: Int!) { createListing(input: { \
                 title: \"car\", brand: $b, model: $m, year: $y, mileageKm: $km, status: AVAILABLE, \
                 price: { amountMinor: $p, currency: USD } }) { id } }",
                json!({ "b": brand, "m": model, "y": year, "km": km, "p": price }),
            )
            .await)["createListing"]["id"]
            .clone();
        if status == "RESERVED" {
            ok(api
                .gql(&dealer.token, "mutation($id: ID!) { changeListingStatus(input: { id: $id, status: RESERVED }) { id } }", json!({ "id": id }))
                .await);
        }
        if matches {
            expected.push((price, id));
        }
    }
    expected.sort_by_key(|(price, _)| *price);
    let request = draft(
        &api,
        &dealer,
        json!({ "brand": "TOYOTA", "model": "Camry", "yearMin": 2016, "yearMax": 2020, "mileageMax": 150000,
                "budget": { "amountMinor": 2_000_000, "currency": "USD" } }),
    )
    .await;
    let matched = ok(api
        .gql(
            &dealer.token,
            "query($id: ID!) { requestMatches(id: $id) { id price { amountMinor } } }",
            json!({ "id": request }),
        )
        .await);
    let ids: Vec<Value> = matched["requestMatches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].clone())
        .collect();
    let want: Vec<Value> = expected.into_iter().map(|(_, id)| id).collect();
    assert_eq!(ids, want, "{matched}");
    api.shutdown().await;
}

async fn public_intake_creates_a_lead_and_a_draft_and_is_throttled_per_client(backend: Backend) {
    let throttle = Throttle::default().with_intake(2, Duration::from_secs(3600));
    let api = Api::with_throttle(backend, throttle).await;
    let dealer = api.dealer("dnipro-cars").await;
    const SUBMIT: &str = "mutation($slug: String!) { submitRequest(workspaceSlug: $slug, input: { name: \"Ivan\", \
        phone: \"+380501234567\", needs: { brand: \"Skoda\", budget: { amountMinor: 1500000, currency: EUR } } }) { reference } }";
    let first = ok(api.anonymous(SUBMIT, json!({ "slug": dealer.slug })).await);
    let reference = first["submitRequest"]["reference"].clone();
    ok(api.anonymous(SUBMIT, json!({ "slug": dealer.slug })).await);
    let limited = api.anonymous(SUBMIT, json!({ "slug": dealer.slug })).await;
    assert_eq!(code(&limited), "RATE_LIMITED", "{limited}");
    assert!(
        limited["errors"][0]["extensions"]["retryAfterSeconds"]
            .as_u64()
            .unwrap()
            >= 1
    );

    // The dealer finds the draft and its lead.
    let mut found = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let response = api
            .gql(&dealer.token, "query($id: ID!) { request(id: $id) { status source client { name leadId } needs { brand } } }", json!({ "id": reference }))
            .await;
        if response["errors"].is_null() {
            found = response["data"]["request"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(found["status"], "DRAFT", "{found}");
    assert_eq!(found["source"], "PUBLIC_INTAKE");
    assert_eq!(found["client"]["name"], "Ivan");
    let lead = found["client"]["leadId"].clone();
    assert!(lead.is_string());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = api
            .gql(
                &dealer.token,
                "query($id: ID!) { lead(id: $id) { source } }",
                json!({ "id": lead }),
            )
            .await;
        if response["errors"].is_null() {
            assert_eq!(response["data"]["lead"]["source"], "FORM");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lead never showed: {response}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The platform's own workspace takes no requests from the public: as if it did not
    // exist (from another address, under its own limit).
    let platform = api.dealer("platform").await;
    let body = json!({ "query": SUBMIT, "variables": { "slug": platform.slug } }).to_string();
    let elsewhere = std::net::SocketAddr::from(([203, 0, 113, 7], 40_000));
    let (_, refused) = api
        .post_from(None, axum::body::Body::from(body), Some(elsewhere))
        .await;
    assert_eq!(code(&refused), "NOT_FOUND", "{refused}");
    api.shutdown().await;
}

async fn bad_needs_and_changes_after_close_are_refused(backend: Backend) {
    let api = Api::new(backend).await;
    let dealer = api.dealer("kharkiv-auto").await;
    const DRAFT: &str = "mutation($needs: NeedsInput!) { draftRequest(input: { needs: $needs, client: { name: \"Olha\" } }) { id } }";
    for (needs, expected) in [
        (json!({ "yearMin": 2020, "yearMax": 2018 }), "needs.yearMax"),
        (
            json!({ "budget": { "amountMinor": 0, "currency": "USD" } }),
            "needs.budget",
        ),
    ] {
        let response = api
            .gql(&dealer.token, DRAFT, json!({ "needs": needs }))
            .await;
        assert_eq!(code(&response), "VALIDATION", "{response}");
        assert_eq!(field(&response), expected);
    }
    let unknown = api
        .gql(
            &dealer.token,
            DRAFT,
            json!({ "needs": { "budget": { "amountMinor": 100, "currency": "XYZ" } } }),
        )
        .await;
    assert_eq!(code(&unknown), "VALIDATION", "{unknown}");
    let events = api.events().await;

    let (partner, token) = partner_with_token(&api, &dealer, "Lviv Auto").await;
    let request = draft(&api, &dealer, json!({})).await;
    ok(api
        .gql(&dealer.token, "mutation($id: ID!, $p: ID!) { publishRequest(input: { id: $id, partnerIds: [$p] }) { id } }", json!({ "id": request, "p": partner }))
        .await);
    ok(api
        .gql(&dealer.token, "mutation($id: ID!) { closeRequestLost(id: $id, reason: \"bought elsewhere\") { status lostReason } }", json!({ "id": request }))
        .await);
    let late = api
        .gql(&token, OFFER, json!({ "r": request, "amount": 1 }))
        .await;
    assert_eq!(code(&late), "CONFLICT", "{late}");
    let edit = api
        .gql(&dealer.token, "mutation($id: ID!) { editRequest(input: { id: $id, client: { name: \"x\" } }) { id } }", json!({ "id": request }))
        .await;
    assert_eq!(code(&edit), "CONFLICT");
    assert!(api.events().await > events);
    api.shutdown().await;
}

async fn the_dealer_sees_a_partners_variant_arrive_over_a_websocket_within_a_second(
    backend: Backend,
) {
    let api = Api::new(backend).await;
    let dealer = api.dealer("live-requests").await;
    let (partner, partner_token) = partner_with_token(&api, &dealer, "Lviv Auto").await;
    let request = draft(&api, &dealer, json!({ "brand": "Toyota" })).await;
    ok(api
        .gql(
            &dealer.token,
            "mutation($id: ID!, $p: ID!) { publishRequest(input: { id: $id, partnerIds: [$p] }) { id } }",
            json!({ "id": request, "p": partner }),
        )
        .await);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("ws://{}", listener.local_addr().unwrap());
    let router = api.router.clone();
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let mut socket = connect(&base, &dealer.token).await;
    assert_eq!(
        next(&mut socket, Duration::from_secs(5)).await.unwrap()["type"],
        "connection_ack"
    );
    subscribe(
        &mut socket,
        "request",
        "subscription($id: ID!) { requestChanged(id: $id) { id variantCount bestOffer { amountMinor currency } \
         variants { title status partnerId } } }",
        json!({ "id": request }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let sent = Instant::now();
    ok(api
        .gql(
            &partner_token,
            OFFER,
            json!({ "r": request, "amount": 1_750_000 }),
        )
        .await);
    let message = next(&mut socket, Duration::from_secs(1)).await.unwrap();
    let elapsed = sent.elapsed();
    assert_eq!(message["type"], "next", "{message}");
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    assert_eq!(
        message["payload"]["data"]["requestChanged"],
        json!({
            "id": request,
            "variantCount": 1,
            "bestOffer": { "amountMinor": 1_750_000, "currency": "USD" },
            "variants": [{ "title": "Camry 2019", "status": "OFFERED", "partnerId": partner }],
        })
    );

    // A second offer, a cheaper one, arrives as the next change.
    ok(api
        .gql(
            &partner_token,
            OFFER,
            json!({ "r": request, "amount": 1_600_000 }),
        )
        .await);
    let message = next(&mut socket, Duration::from_secs(2)).await.unwrap();
    let changed = &message["payload"]["data"]["requestChanged"];
    assert_eq!(changed["variantCount"], 2, "{message}");
    assert_eq!(changed["bestOffer"]["amountMinor"], 1_600_000);

    // Neither another workspace nor the partner can follow the dealer's request.
    let other = api.dealer("other-live-requests").await;
    for (token, expected) in [(&other.token, "NOT_FOUND"), (&partner_token, "FORBIDDEN")] {
        let mut stranger = connect(&base, token).await;
        assert_eq!(
            next(&mut stranger, Duration::from_secs(5)).await.unwrap()["type"],
            "connection_ack"
        );
        subscribe(
            &mut stranger,
            "request",
            "subscription($id: ID!) { requestChanged(id: $id) { id } }",
            json!({ "id": request }),
        )
        .await;
        let refused = next(&mut stranger, Duration::from_secs(5)).await.unwrap();
        // A refusal is an `error` message, or a `next` carrying the errors.
        let errors = match refused["type"].as_str() {
            Some("error") => &refused["payload"],
            _ => &refused["payload"]["errors"],
        };
        assert_eq!(errors[0]["extensions"]["code"], expected, "{refused}");
    }
    server.abort();
    api.shutdown().await;
}

const LIST: &str = "query($filter: RequestFilterInput, $first: Int, $after: String) { \
    requests(filter: $filter, first: $first, after: $after) { totalCount hasNextPage endCursor nodes { id } } }";

/// The ids a filter lists, walking every page of `first`, and the total count each page told.
async fn list_all(api: &Api, dealer: &Dealer, filter: Value, first: i64) -> (Vec<String>, i64) {
    let (mut ids, mut after, mut total) = (Vec::new(), Value::Null, None);
    loop {
        let page = ok(api
            .gql(
                &dealer.token,
                LIST,
                json!({ "filter": filter, "first": first, "after": after }),
            )
            .await)["requests"]
            .clone();
        let count = page["totalCount"].as_i64().unwrap();
        assert_eq!(
            *total.get_or_insert(count),
            count,
            "every page tells one total"
        );
        ids.extend(
            page["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].as_str().unwrap().to_string()),
        );
        if page["hasNextPage"] != json!(true) {
            return (ids, total.unwrap());
        }
        after = page["endCursor"].clone();
    }
}

async fn the_request_list_filters_and_pages_newest_first(backend: Backend) {
    let api = Api::new(backend).await;
    let dealer = api.dealer("kharkiv-cars").await;
    let other = api.dealer("poltava-cars").await;
    let (partner, _) = partner_with_token(&api, &dealer, "Lviv Motors").await;
    draft(&api, &other, json!({ "brand": "Toyota" })).await;

    // (brand, budget in USD or EUR) of each request, oldest first.
    let needs = [
        json!({ "brand": "Toyota", "budget": { "amountMinor": 1_500_000, "currency": "USD" } }),
        json!({ "brand": "BMW", "budget": { "amountMinor": 3_000_000, "currency": "USD" } }),
        json!({ "brand": "toyota", "budget": { "amountMinor": 2_000_000, "currency": "EUR" } }),
        json!({ "brand": "Audi" }),
        json!({ "brand": "TOYOTA", "budget": { "amountMinor": 2_500_000, "currency": "USD" } }),
    ];
    let mut ids = Vec::new();
    let mut before_last_two = None;
    for (i, n) in needs.iter().enumerate() {
        if i == 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            before_last_two = Some(chrono::Utc::now());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ids.push(draft(&api, &dealer, n.clone()).await);
    }
    let newest_first = |picked: &[usize]| -> Vec<String> {
        picked.iter().rev().map(|&i| ids[i].clone()).collect()
    };
    for i in [1, 2, 4] {
        ok(api
            .gql(
                &dealer.token,
                "mutation($id: ID!, $p: ID!) { publishRequest(input: { id: $id, partnerIds: [$p] }) { id } }",
                json!({ "id": ids[i], "p": partner }),
            )
            .await);
    }
    for i in [0, 2] {
        ok(api
            .gql(
                &dealer.token,
                "mutation($id: ID!, $a: ID) { assignRequest(id: $id, assigneeId: $a) { id } }",
                json!({ "id": ids[i], "a": dealer.owner.to_string() }),
            )
            .await);
    }

    // Every page size walks the whole list once, newest first; the other dealer's request
    // is never in it.
    for first in [1, 2, 5, 30] {
        let (listed, total) = list_all(&api, &dealer, json!({}), first).await;
        assert_eq!(listed, newest_first(&[0, 1, 2, 3, 4]), "pages of {first}");
        assert_eq!(total, 5);
    }
    let cases = [
        (json!({ "statuses": ["PUBLISHED"] }), vec![1, 2, 4]),
        (
            json!({ "statuses": ["DRAFT", "PUBLISHED"] }),
            vec![0, 1, 2, 3, 4],
        ),
        (
            json!({ "assigneeId": dealer.owner.to_string() }),
            vec![0, 2],
        ),
        (json!({ "brand": "toyota" }), vec![0, 2, 4]),
        (
            json!({ "brand": "Toyota", "statuses": ["PUBLISHED"] }),
            vec![2, 4],
        ),
        (
            json!({ "budgetCurrency": "USD", "budgetMin": 1_500_000, "budgetMax": 2_500_000 }),
            vec![0, 4],
        ),
        (json!({ "budgetCurrency": "EUR" }), vec![2]),
        (
            json!({ "createdFrom": before_last_two.unwrap().to_rfc3339() }),
            vec![3, 4],
        ),
        (
            json!({ "createdTo": before_last_two.unwrap().to_rfc3339(), "brand": "toyota" }),
            vec![0, 2],
        ),
    ];
    for (filter, expected) in cases {
        let (listed, total) = list_all(&api, &dealer, filter.clone(), 2).await;
        assert_eq!(listed, newest_first(&expected), "{filter}");
        assert_eq!(total, expected.len() as i64, "{filter}");
    }

    let (other_listed, other_total) = list_all(&api, &other, json!({}), 10).await;
    assert_eq!((other_listed.len(), other_total), (1, 1));

    let bad = api
        .gql(
            &dealer.token,
            LIST,
            json!({ "filter": { "budgetMin": 100 }, "first": 2, "after": null }),
        )
        .await;
    assert_eq!(code(&bad), "VALIDATION", "{bad}");
    assert_eq!(field(&bad), "filter.budgetCurrency", "{bad}");
    let bad = api
        .gql(
            &dealer.token,
            LIST,
            json!({ "filter": { "budgetCurrency": "USD", "budgetMin": -10 }, "first": 2, "after": null }),
        )
        .await;
    assert_eq!(
        (code(&bad), field(&bad)),
        ("VALIDATION", "filter.budgetMin"),
        "{bad}"
    );
    let bad = api
        .gql(
            &dealer.token,
            LIST,
            json!({ "first": 2, "after": "not-a-cursor" }),
        )
        .await;
    assert_eq!(code(&bad), "VALIDATION", "{bad}");
    api.shutdown().await;
}
