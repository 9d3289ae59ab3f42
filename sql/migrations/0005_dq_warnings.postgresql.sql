-- Issue 14 (items 1 and 6): dq_result counts warnings too (severity 'warning': rows and files kept),
-- a file's header checks (header:<CODE>) and the rows set aside before GX ran. The data dictionary
-- says so; no table or column changes (SQLite keeps no comments: no SQLite file).
COMMENT ON COLUMN dq_result."check" IS 'delivery_gate, quarantined_ratio, volume, rows:<CODE> (rows quarantined per reason code; rows kept per warning code, RETIRED_DISTRICT), header:<CODE> (a file''s header: COLUMNS_REORDERED, EXTRA_COLUMN), gx:<expectation>(<column>) (the feed''s GX suite on the file; gx:expect_table_row_count_to_equal() counts the rows set aside as MALFORMED before GX ran)';
COMMENT ON COLUMN dq_result.success IS 'the check passed; false for a warning that applies (severity warning)';
COMMENT ON COLUMN dq_result.severity IS 'error (rows quarantined, delivery rejected) / warning (rows and files kept)';
