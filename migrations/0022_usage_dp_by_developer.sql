-- The Developers page over long ranges (issue 12). By developer, a range's
-- compacted days were 52,000 `usage_dp` rows at a year of 200 developers,
-- sorted by developer before they could be summed. This covering index keeps
-- them in developer order: the page sums each developer's days with one seek
-- and a contiguous read, whatever the range, and sorts nothing. It is written
-- only where `usage_dp` is (compaction, once per developer × project × day,
-- and a late event's guarded upsert), never per event.
CREATE INDEX usage_dp_developer ON usage_dp (team_id, developer_id, day, requests, unpriced_requests, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens, cost_micro_usd, cost_pico_usd, last_quarter);
