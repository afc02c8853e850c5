-- The items table of the dbtest plugin.
CREATE TABLE dbtest_items (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
