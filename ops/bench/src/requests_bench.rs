//! The Requests benchmarks: list and matching latency on a large workspace.
//!
//! `seed-requests` writes read-model rows in bulk (PostgreSQL, `generate_series` keeps the
//! generation in the server): listings with a spread of brands, models, years, prices,
//! cities and statuses; requests whose needs are drawn from the same spread; variants
//! offered by partners. `requests-query` then times the list queries, one request with its
//! variants, and `requestMatches` over a sample of the requests, over HTTP.

use std::time::Instant;

use anyhow::Context;
use cartie_domain::workspace::Slug;
use cartie_domain::WorkspaceId;
use cartie_store::Database;
use serde_json::{json, Value};

use super::{percentile, post};

/// Twenty brands of five models each: model `m` (0..100) belongs to brand `m / 5`.
const BRANDS: &str = "ARRAY['Toyota','Volkswagen','BMW','Mercedes-Benz','Audi','Skoda','Renault','Hyundai',\
'Kia','Ford','Nissan','Mazda','Honda','Peugeot','Chevrolet','Mitsubishi','Lexus','Volvo','Subaru','Tesla']";
const MODELS: &str = "ARRAY['Camry','Corolla','RAV4','Land Cruiser','Prius','Golf','Passat','Tiguan','Touareg','Polo',\
'320','520','X3','X5','X1','C 200','E 220','GLC','GLE','S 500','A4','A6','Q5','Q7','A3','Octavia','Superb','Kodiaq',\
'Fabia','Karoq','Megane','Duster','Logan','Clio','Kadjar','Tucson','Sonata','Elantra','Santa Fe','i30','Sportage',\
'Ceed','Sorento','Rio','Optima','Focus','Mondeo','Kuga','Fiesta','Explorer','Qashqai','X-Trail','Leaf','Juke','Rogue',\
'CX-5','Mazda6','Mazda3','CX-30','CX-9','Civic','Accord','CR-V','HR-V','Jazz','308','3008','508','2008','208','Cruze',\
'Malibu','Volt','Bolt','Equinox','Outlander','Lancer','Pajero','ASX','Eclipse Cross','RX','NX','ES','GX','IS','XC60',\
'XC90','S60','V60','XC40','Forester','Outback','Impreza','XV','Legacy','Model 3','Model Y','Model S','Model X','Cybertruck']";
const CITIES: &str = "ARRAY['Kyiv','Lviv','Odesa','Kharkiv','Dnipro','Zaporizhzhia','Vinnytsia','Poltava','Chernihiv',\
'Cherkasy','Zhytomyr','Sumy','Rivne','Ivano-Frankivsk','Ternopil','Lutsk','Uzhhorod','Chernivtsi','Mykolaiv','Kherson']";
const FUELS: &str = "ARRAY['PETROL','PETROL','PETROL','DIESEL','DIESEL','HYBRID','ELECTRIC','LPG']";
const GEARBOXES: &str = "ARRAY['AUTOMATIC','AUTOMATIC','MANUAL','ROBOT','CVT']";
const BODIES: &str =
    "ARRAY['SEDAN','SUV','CROSSOVER','HATCHBACK','WAGON','LIFTBACK','MINIVAN','COUPE']";

/// A deterministic number in `0..modulo` for row `n` and attribute `salt`.
fn pick(n: &str, salt: u32, modulo: u32) -> String {
    format!("((hashint8({n} * 1000 + {salt}) & 2147483647) % {modulo})")
}

pub async fn seed_requests(
    database_url: String,
    workspace_slug: String,
    listings: i64,
    requests: i64,
    variants_per_request: i64,
) -> anyhow::Result<()> {
    let db = Database::connect(&database_url, 4)
        .await
        .context("connect")?;
    db.migrate().await?;
    let Database::Postgres(pool) = &db else {
        anyhow::bail!("seed-requests fills PostgreSQL (the benchmark's target)");
    };
    let workspace = WorkspaceId::for_slug(
        &Slug::parse("slug", &workspace_slug).map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let started = Instant::now();
    let base = chrono::Utc::now() - chrono::Duration::days(365);

    // Listings: 70 % available, the rest reserved, sold or archived; 85 % priced in USD.
    let model = pick("n", 1, 100);
    let listing_sql = format!(
        "INSERT INTO inventory_listings (listing_id, workspace_id, version, status, title, description, brand, model, \
         year, mileage_km, fuel, gearbox, engine_volume_cc, body, colour, vin, city, price_minor, price_currency, photos, \
         brand_key, model_key, city_key, search_text, created_position, created_at, updated_at) \
         SELECT md5('listing' || n)::uuid, $1, 2, \
           CASE WHEN s < 70 THEN 'AVAILABLE' WHEN s < 80 THEN 'RESERVED' WHEN s < 95 THEN 'SOLD' ELSE 'ARCHIVED' END, \
           t, 'One owner, full service history, car ' || n, b, m, y, mi, f, g, 1400 + 200 * {cc}, bo, 'Grey', NULL, c, \
           p, cur, '[]'::jsonb, lower(b), lower(m), lower(c), lower(t || E'\\n' || 'One owner, full service history, car ' || n), \
           n, $2 + make_interval(secs => n * 30), $2 + make_interval(secs => n * 30) \
         FROM generate_series($3::bigint, $4::bigint) AS n, \
         LATERAL (SELECT {status} AS s, ({BRANDS})[1 + {model} / 5] AS b, ({MODELS})[1 + {model}] AS m, \
           2000 + {year} AS y, ({CITIES})[1 + {city}] AS c, {mileage} * 1000 AS mi, ({FUELS})[1 + {fuel}] AS f, \
           ({GEARBOXES})[1 + {gearbox}] AS g, ({BODIES})[1 + {body}] AS bo, \
           (3000 + {price}) * 100 AS p, CASE WHEN {currency} < 85 THEN 'USD' WHEN {currency} < 95 THEN 'EUR' ELSE 'UAH' END AS cur) AS a, \
         LATERAL (SELECT b || ' ' || m || ' ' || y AS t) AS tt",
        status = pick("n", 2, 100),
        year = pick("n", 3, 27),
        city = pick("n", 4, 20),
        mileage = pick("n", 5, 300),
        fuel = pick("n", 6, 8),
        gearbox = pick("n", 7, 5),
        body = pick("n", 8, 8),
        price = pick("n", 9, 77_000),
        currency = pick("n", 10, 100),
        cc = pick("n", 11, 10),
    );
    let batch = 100_000i64;
    let mut from = 1;
    while from <= listings {
        let to = (from + batch - 1).min(listings);
        sqlx::query(&listing_sql)
            .bind(workspace.0)
            .bind(base)
            .bind(from)
            .bind(to)
            .execute(pool)
            .await
            .context("seed listings")?;
        eprintln!("{to} listings in {:.1?}", started.elapsed());
        from = to + 1;
    }

    // Partners.
    sqlx::query(
        "INSERT INTO partners (partner_id, workspace_id, name, city, contacts, notes, active, version, created_at, updated_at) \
         SELECT md5('partner' || n)::uuid, $1, 'Partner Motors ' || n, 'Kyiv', '[]'::jsonb, NULL, true, 1, $2, $2 \
         FROM generate_series(1, 50) AS n ON CONFLICT DO NOTHING",
    )
    .bind(workspace.0)
    .bind(base)
    .execute(pool)
    .await
    .context("seed partners")?;

    // Requests: needs drawn like the listings; 90 % name a brand, 70 % of those a model;
    // 85 % have a budget (90 % of them in USD).
    let rmodel = pick("r", 21, 100);
    let request_sql = format!(
        "INSERT INTO requests (request_id, workspace_id, status, source, assignee, brand, model, brand_key, model_key, \
         year_min, year_max, budget_minor, budget_currency, mileage_max, fuel, gearbox, body, city, notes, client_name, \
         client_phone, client_username, lead_id, lost_reason, won_variant_id, variant_count, offer_currency, \
         best_offer_minor, channel_posts, version, created_position, changed_position, created_at, updated_at, \
         published_at, closed_at) \
         SELECT md5('request' || r)::uuid, $1, st, CASE WHEN {source} = 0 THEN 'PUBLIC_INTAKE' ELSE 'MANUAL' END, \
           md5('member' || {member})::uuid, b, m, lower(b), lower(m), ymin, ymax, budget, cur, mil, f, g, bo, c, \
           'Needs it by next month', 'Client ' || r, '+38050' || lpad(r::text, 7, '0'), NULL, NULL, \
           CASE WHEN st = 'LOST' THEN 'Bought elsewhere' END, NULL, $5, CASE WHEN $5 > 0 THEN 'USD' END, \
           CASE WHEN $5 > 0 THEN 850000 END, '[]'::jsonb, 3 + $5, r, r, \
           $2 + make_interval(secs => r * 600), $2 + make_interval(secs => r * 600), \
           CASE WHEN st <> 'DRAFT' THEN $2 + make_interval(secs => r * 600 + 60) END, \
           CASE WHEN st IN ('WON', 'LOST') THEN $2 + make_interval(secs => r * 600 + 86400) END \
         FROM generate_series($3::bigint, $4::bigint) AS r, \
         LATERAL (SELECT \
           CASE WHEN {status} < 10 THEN 'DRAFT' WHEN {status} < 70 THEN 'PUBLISHED' WHEN {status} < 90 THEN 'WON' ELSE 'LOST' END AS st, \
           CASE WHEN {has_brand} < 90 THEN ({BRANDS})[1 + {rmodel} / 5] END AS b, \
           CASE WHEN {has_brand} < 63 THEN ({MODELS})[1 + {rmodel}] END AS m, \
           CASE WHEN {has_year} < 60 THEN 2005 + {year} END AS ymin, \
           CASE WHEN {has_year} < 30 THEN 2015 + {year} END AS ymax, \
           CASE WHEN {has_budget} < 85 THEN (8000 + {budget}) * 100 END AS budget, \
           CASE WHEN {has_budget} < 85 THEN CASE WHEN {currency} < 90 THEN 'USD' ELSE 'EUR' END END AS cur, \
           CASE WHEN {has_mileage} < 40 THEN (50 + {mileage}) * 1000 END AS mil, \
           CASE WHEN {has_fuel} < 30 THEN ({FUELS})[1 + {fuel}] END AS f, \
           CASE WHEN {has_gearbox} < 40 THEN ({GEARBOXES})[1 + {gearbox}] END AS g, \
           CASE WHEN {has_body} < 20 THEN ({BODIES})[1 + {body}] END AS bo, \
           CASE WHEN {has_city} < 30 THEN ({CITIES})[1 + {city}] END AS c) AS a",
        source = pick("r", 22, 5),
        member = pick("r", 23, 8),
        status = pick("r", 24, 100),
        has_brand = pick("r", 25, 100),
        has_year = pick("r", 26, 100),
        year = pick("r", 27, 12),
        has_budget = pick("r", 28, 100),
        budget = pick("r", 29, 52_000),
        currency = pick("r", 30, 100),
        has_mileage = pick("r", 31, 100),
        mileage = pick("r", 32, 150),
        has_fuel = pick("r", 33, 100),
        fuel = pick("r", 34, 8),
        has_gearbox = pick("r", 35, 100),
        gearbox = pick("r", 36, 5),
        has_body = pick("r", 37, 100),
        body = pick("r", 38, 8),
        has_city = pick("r", 39, 100),
        city = pick("r", 40, 20),
    );
    let batch = 10_000i64;
    let mut from = 1;
    while from <= requests {
        let to = (from + batch - 1).min(requests);
        sqlx::query(&request_sql)
            .bind(workspace.0)
            .bind(base)
            .bind(from)
            .bind(to)
            .bind(variants_per_request)
            .execute(pool)
            .await
            .context("seed requests")?;
        // Each request addressed to three partners; its variants from them, in USD, every
        // fourth rejected (the best offer above is the cheapest of the others).
        sqlx::query(
            "INSERT INTO request_partners (request_id, partner_id, workspace_id, addressed_position, addressed_at) \
             SELECT md5('request' || r)::uuid, md5('partner' || (1 + (r * 7 + k) % 50))::uuid, $1, r, $2 \
             FROM generate_series($3::bigint, $4::bigint) AS r, generate_series(0, 2) AS k",
        )
        .bind(workspace.0)
        .bind(base)
        .bind(from)
        .bind(to)
        .execute(pool)
        .await
        .context("seed addressees")?;
        sqlx::query(
            "INSERT INTO request_variants (variant_id, request_id, workspace_id, source, partner_id, listing_id, \
             listing_ref, title, brand, model, year, mileage_km, fuel, gearbox, body, description, price_minor, \
             price_currency, photos, city, status, reject_reason, offered_position, offered_at, updated_at) \
             SELECT md5('variant' || r || '-' || v)::uuid, md5('request' || r)::uuid, $1, 'PARTNER', \
             md5('partner' || (1 + (r * 7 + v % 3) % 50))::uuid, NULL, 'ref-' || r || '-' || v, \
             'Offered car ' || v || ' for request ' || r, NULL, NULL, 2010 + v, 40000 + v * 5000, 'PETROL', \
             'AUTOMATIC', 'SEDAN', 'Clean history, ready to drive', 800000 + v * 50000, 'USD', '[]'::jsonb, \
             'Kyiv', CASE WHEN v % 4 = 0 THEN 'REJECTED' WHEN v % 4 = 1 THEN 'SHORTLISTED' ELSE 'OFFERED' END, \
             CASE WHEN v % 4 = 0 THEN 'Too expensive' END, r * 100 + v, $2, $2 \
             FROM generate_series($3::bigint, $4::bigint) AS r, generate_series(1, $5) AS v",
        )
        .bind(workspace.0)
        .bind(base)
        .bind(from)
        .bind(to)
        .bind(variants_per_request)
        .execute(pool)
        .await
        .context("seed variants")?;
        eprintln!("{to} requests in {:.1?}", started.elapsed());
        from = to + 1;
    }
    // What autovacuum does for a live database after bulk writes: statistics for the
    // planner, and the visibility map that lets index-only scans skip the table.
    for table in [
        "inventory_listings",
        "requests",
        "request_variants",
        "request_partners",
    ] {
        sqlx::query(&format!("VACUUM (ANALYZE) {table}"))
            .execute(pool)
            .await?;
    }
    println!(
        "{}",
        json!({
            "listings": listings,
            "requests": requests,
            "variants": requests * variants_per_request,
            "seconds": started.elapsed().as_secs_f64(),
        })
    );
    Ok(())
}

const LIST_FIELDS: &str = "nodes { id status needs { brand model budget { amountMinor currency } } \
    client { name } variantCount bestOffer { amountMinor currency } createdAt } totalCount hasNextPage endCursor";
const MATCH: &str = "query($id: ID!) { requestMatches(id: $id, first: 20) { id title price { amountMinor currency } year mileageKm city } }";
const ONE: &str = "query($id: ID!) { request(id: $id) { id status needs { brand model } variants { id title status \
    price { amountMinor currency } partnerId } partnerIds } }";

/// The ids of a sample of requests, spread over the whole list.
async fn sample(
    http: &reqwest::Client,
    endpoint: &str,
    token: &str,
    pages: usize,
) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..pages {
        let data = post(
            http,
            endpoint,
            token,
            "query($after: String) { requests(first: 100, after: $after) { nodes { id } endCursor } }",
            json!({ "after": after }),
        )
        .await?;
        let page = &data["requests"];
        ids.extend(
            page["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .step_by(7)
                .filter_map(|n| n["id"].as_str().map(str::to_string)),
        );
        after = page["endCursor"].as_str().map(str::to_string);
        if after.is_none() {
            break;
        }
    }
    Ok(ids)
}

async fn measure(
    http: &reqwest::Client,
    endpoint: &str,
    token: &str,
    queries: &[(String, Value)],
    requests: usize,
) -> anyhow::Result<Value> {
    for (query, variables) in queries.iter().cycle().take(10) {
        post(http, endpoint, token, query, variables.clone()).await?;
    }
    let mut latencies = Vec::with_capacity(requests);
    for (query, variables) in queries.iter().cycle().take(requests) {
        let t = Instant::now();
        post(http, endpoint, token, query, variables.clone()).await?;
        latencies.push(t.elapsed());
    }
    latencies.sort();
    Ok(json!({ "p50_ms": percentile(&latencies, 0.5), "p99_ms": percentile(&latencies, 0.99) }))
}

pub async fn requests_query(url: String, token: String, requests: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let endpoint = format!("{url}/graphql");
    let ids = sample(&http, &endpoint, &token, 40).await?;
    anyhow::ensure!(!ids.is_empty(), "the workspace has no requests");
    let member = post(
        &http,
        &endpoint,
        &token,
        "{ requests(first: 1) { nodes { assigneeId } } }",
        json!({}),
    )
    .await?["requests"]["nodes"][0]["assigneeId"]
        .as_str()
        .map(str::to_string)
        .context("the first request has no assignee")?;
    let list = |filter: &str, after: Option<&str>| {
        (
            format!("query($after: String) {{ requests(first: 30, after: $after{filter}) {{ {LIST_FIELDS} }} }}"),
            json!({ "after": after }),
        )
    };
    let by_id = |query: &str| -> Vec<(String, Value)> {
        ids.iter()
            .map(|id| (query.to_string(), json!({ "id": id })))
            .collect()
    };
    // The cursor of a page deep in the list.
    let deep = post(
        &http,
        &endpoint,
        &token,
        "{ requests(first: 1000) { endCursor } }",
        json!({}),
    )
    .await
    .ok()
    .and_then(|d| d["requests"]["endCursor"].as_str().map(str::to_string));
    let cases: Vec<(&str, Vec<(String, Value)>)> = vec![
        ("list_first_page", vec![list("", None)]),
        ("list_page_after_1000", vec![list("", deep.as_deref())]),
        (
            "list_published",
            vec![list(", filter: { statuses: [PUBLISHED] }", None)],
        ),
        (
            "list_by_assignee",
            vec![list(
                &format!(", filter: {{ assigneeId: \"{member}\" }}"),
                None,
            )],
        ),
        (
            "list_by_brand",
            vec![list(", filter: { brand: \"toyota\" }", None)],
        ),
        (
            "list_budget_range",
            vec![list(
                ", filter: { budgetCurrency: USD, budgetMin: 1500000, budgetMax: 2500000 }",
                None,
            )],
        ),
        (
            "list_created_between",
            vec![list(
                &format!(
                    ", filter: {{ createdFrom: \"{}\", createdTo: \"{}\" }}",
                    (chrono::Utc::now() - chrono::Duration::days(200)).to_rfc3339(),
                    (chrono::Utc::now() - chrono::Duration::days(170)).to_rfc3339()
                ),
                None,
            )],
        ),
        ("request_with_variants", by_id(ONE)),
        ("matching", by_id(MATCH)),
    ];
    let mut results = serde_json::Map::new();
    results.insert("sampled_requests".into(), json!(ids.len()));
    for (name, queries) in cases {
        results.insert(
            name.to_string(),
            measure(&http, &endpoint, &token, &queries, requests).await?,
        );
    }
    println!("{}", Value::Object(results));
    Ok(())
}
