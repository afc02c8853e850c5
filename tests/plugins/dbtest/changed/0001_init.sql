-- Edited after it was applied: must be refused.
CREATE TABLE dbtest_items (
    id bigserial PRIMARY KEY,
    name varchar(100) NOT NULL UNIQUE
);
