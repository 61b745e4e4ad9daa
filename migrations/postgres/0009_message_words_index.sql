-- Message-text search looks up a search's rarest whole words first (ADR 0018): an index of
-- each message's words beside the trigram index. The trigram index answers searches for
-- parts of words; this one answers a phrase by the words it must contain, without reading
-- the long posting lists of trigrams that nearly every message has.
CREATE INDEX inbox_messages_words ON inbox_messages USING gin (to_tsvector('simple'::regconfig, text_key));
