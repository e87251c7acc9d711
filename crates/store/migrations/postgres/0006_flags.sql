-- Whether an operation is late (1) or needs a person (2), beside its state
-- (`codec::flags`), so that /metrics counts them over an index.
ALTER TABLE operations ADD COLUMN flags SMALLINT NOT NULL DEFAULT 0;
UPDATE operations SET flags =
      (CASE WHEN (state::jsonb ->> 'delayed')::boolean AND status IN ('accepted', 'running', 'compensating')
            THEN 1 ELSE 0 END)
    | (CASE WHEN (state::jsonb ->> 'needs_attention')::boolean THEN 2 ELSE 0 END)
    WHERE (state::jsonb ->> 'delayed')::boolean OR (state::jsonb ->> 'needs_attention')::boolean;
CREATE INDEX operations_flagged ON operations(flags) WHERE flags <> 0;
