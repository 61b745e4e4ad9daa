-- Requests lists: newest first by creation time (then log position), so a "created
-- between" filter is a range of the same index the list walks, and every other filter's
-- index walks in list order too. A cursor names its request by creation position: the
-- position index also holds the time, to find where the next page starts from the index.
DROP INDEX requests_by_recency;
DROP INDEX requests_by_creation_time;
DROP INDEX requests_by_status;
DROP INDEX requests_by_assignee;
DROP INDEX requests_by_brand;
CREATE INDEX requests_by_position ON requests (workspace_id, created_position, created_at);
CREATE INDEX requests_by_creation ON requests (workspace_id, created_at, created_position);
CREATE INDEX requests_by_status ON requests (workspace_id, status, created_at, created_position);
CREATE INDEX requests_by_assignee ON requests (workspace_id, assignee, created_at, created_position);
CREATE INDEX requests_by_brand ON requests (workspace_id, brand_key, created_at, created_position);

-- Matching a request against the inventory walks the available cars in the order it
-- answers (cheapest first with a budget, newest first without), of the brand when the
-- request names one, and checks every other need inside the index: the indexes carry each
-- column a need can constrain, so no car is read from the table until it is a match.
DROP INDEX inventory_listings_for_matching;
CREATE INDEX inventory_available_by_brand_and_price
    ON inventory_listings (workspace_id, brand_key, price_currency, price_minor)
    INCLUDE (model_key, year, mileage_km, fuel, gearbox, body, city_key, created_position, listing_id)
    WHERE status = 'AVAILABLE';
CREATE INDEX inventory_available_by_price
    ON inventory_listings (workspace_id, price_currency, price_minor)
    INCLUDE (brand_key, model_key, year, mileage_km, fuel, gearbox, body, city_key, created_position, listing_id)
    WHERE status = 'AVAILABLE';
CREATE INDEX inventory_available_by_brand_and_recency
    ON inventory_listings (workspace_id, brand_key, created_position)
    INCLUDE (model_key, year, mileage_km, fuel, gearbox, body, city_key, price_currency, price_minor, listing_id)
    WHERE status = 'AVAILABLE';
CREATE INDEX inventory_available_by_recency
    ON inventory_listings (workspace_id, created_position)
    INCLUDE (brand_key, model_key, year, mileage_km, fuel, gearbox, body, city_key, price_currency, price_minor, listing_id)
    WHERE status = 'AVAILABLE';

-- A model belongs to one brand: without this the planner multiplies the two selectivities
-- and expects a brand-and-model filter to keep a hundredth of the rows it keeps.
CREATE STATISTICS inventory_listings_model_within_brand (dependencies, ndistinct)
    ON brand_key, model_key FROM inventory_listings;
